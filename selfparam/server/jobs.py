"""Knowledge jobs: a queue served by one background worker, with every job's state kept on disk.

A job is one `POST /v1/knowledge`: queued -> running -> done (with the version it wrote) or failed (with
the reason). Each job is a JSON file written atomically under the jobs folder at every change of state, so
after a crash (kill -9 included) the next start finds it: a job that was running is reported failed
(the store kept nothing of it: versions are written whole or not at all), and jobs still queued are
queued again, in their order.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import traceback
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ..atomic import atomic_write_text
from ..methods.base import Context
from ..store import Version

STATES = ("queued", "running", "done", "failed")


def _now() -> str:
    # microseconds: jobs are ordered by creation time, and several can arrive within a second
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass
class Job:
    """One knowledge request and what became of it. `texts` are kept on disk but never sent back."""

    id: str
    method: str
    contexts: list[dict]  # [{id, chars}]
    texts: list[str] = field(repr=False)
    state: str = "queued"
    created: str = field(default_factory=_now)
    started: str | None = None
    finished: str | None = None
    stage: str | None = None  # what the running job is doing now, as the store reports it
    elapsed_s: float | None = None
    version: int | None = None  # the version the job wrote
    error: str | None = None

    def public(self) -> dict:
        """What `GET /v1/jobs/{id}` answers: everything but the texts."""
        out = {k: v for k, v in asdict(self).items() if k != "texts"}
        out["object"] = "knowledge.job"
        out["progress"] = {"stage": self.stage, "elapsed_s": self.elapsed_s}
        return out


class JobBook:
    """The jobs of one server, one JSON file each in `folder`."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        for path in sorted(self.folder.glob("job-*.json")):
            job = Job(**json.loads(path.read_text(encoding="utf-8")))
            self._jobs[job.id] = job

    def new(self, method: str, contexts: list[Context]) -> Job:
        job = Job(id=f"job-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}", method=method,
                  contexts=[{"id": c.id, "chars": len(c.text)} for c in contexts], texts=[c.text for c in contexts])
        self.save(job)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        with self._lock:
            jobs = list(self._jobs.values())
        return sorted(jobs, key=lambda j: (j.created, j.id))

    def save(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job
            atomic_write_text(self.folder / f"{job.id}.json", json.dumps(asdict(job), ensure_ascii=False))

    def recover(self, serving_version: int) -> list[Job]:
        """After a restart: fail the jobs that were running, and return the queued ones to run again."""
        requeue = []
        for job in self.all():
            if job.state == "running":
                job.state, job.finished = "failed", _now()
                job.error = (f"interrupted: the server stopped while this job was running ({job.stage or 'starting'}); "
                             f"nothing of it was kept and version {serving_version} is serving; submit it again")
                self.save(job)
            elif job.state == "queued":
                requeue.append(job)
        return requeue


class Worker:
    """One thread taking jobs from a queue, one at a time, and running `inject(contexts, progress)`."""

    def __init__(self, book: JobBook, inject: Callable[[list[Context], Callable[[str], None]], Version]):
        self.book = book
        self.inject = inject
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="selfparam-injection-worker", daemon=True)

    def start(self, requeue: list[Job] = ()) -> None:
        for job in requeue:
            self._queue.put(job.id)
        self._thread.start()

    def submit(self, job: Job) -> None:
        self._queue.put(job.id)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to stop after its current job (a running injection is not cut short)."""
        self._queue.put(None)
        self._thread.join(timeout)

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while (job_id := self._queue.get()) is not None:
            job = self.book.get(job_id)
            if job is None or job.state != "queued":
                continue
            self._run_job(job)

    def _run_job(self, job: Job) -> None:
        start = time.monotonic()
        job.state, job.started, job.stage = "running", _now(), "starting"
        self.book.save(job)

        def progress(stage: str) -> None:
            job.stage, job.elapsed_s = stage, round(time.monotonic() - start, 1)
            self.book.save(job)

        contexts = [Context(c["id"], text) for c, text in zip(job.contexts, job.texts)]
        try:
            version = self.inject(contexts, progress)
        except Exception as e:  # the job fails, the worker and the server go on
            job.state, job.error = "failed", f"{type(e).__name__}: {e}"
            if not isinstance(e, (ValueError, FileNotFoundError)):
                traceback.print_exc()  # a bug: keep its traceback in the server's log
        else:
            job.state, job.version, job.stage = "done", version.number, f"version {version.number} is serving"
        job.finished, job.elapsed_s = _now(), round(time.monotonic() - start, 1)
        self.book.save(job)
