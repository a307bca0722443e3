"""The job book and the worker without HTTP: states on disk, recovery after a crash, failures, the queue limit."""

from __future__ import annotations

import json
import time

from fastapi.testclient import TestClient

from selfparam.methods.base import Context
from selfparam.server import Engine, ServerSettings, create_app
from selfparam.server.jobs import JobBook, Worker
from selfparam.store import KnowledgeStore, Version
from selfparam.testing import tiny_lm


def wait(book: JobBook, job_id: str) -> dict:
    deadline = time.monotonic() + 10
    while book.get(job_id).state not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return book.get(job_id).public()


def test_jobs_survive_a_restart_running_ones_fail_queued_ones_run_again(tmp_path):
    book = JobBook(tmp_path)
    running, queued, done, queued_too = (book.new("selfparam", [Context(f"d{i}", f"text {i}")]) for i in range(4))
    running.state, running.stage = "running", "injecting 1 context(s)"
    done.state, done.version = "done", 1
    for job in (running, done):
        book.save(job)

    after_crash = JobBook(tmp_path)  # what the next process reads
    requeue = after_crash.recover(serving_version=1)
    assert [j.id for j in requeue] == [queued.id, queued_too.id] and requeue[0].texts == ["text 1"]
    failed = after_crash.get(running.id)
    assert failed.state == "failed" and "interrupted" in failed.error and "(injecting 1 context(s))" in failed.error
    assert "version 1 is serving" in failed.error
    assert json.loads((tmp_path / f"{running.id}.json").read_text())["state"] == "failed"
    assert after_crash.get(done.id).state == "done" and "texts" not in after_crash.get(done.id).public()


def test_worker_runs_jobs_in_order_and_a_failure_does_not_stop_it(tmp_path):
    book, seen = JobBook(tmp_path), []

    def inject(contexts, progress):
        progress("injecting")
        seen.append(contexts[0].text)
        if contexts[0].text == "bad":
            raise ValueError("inject: context 'bad' is empty")
        return Version(len(seen), len(seen) - 1, "now")

    worker = Worker(book, inject)
    jobs = [book.new("selfparam", [Context("d", text)]) for text in ("first", "bad", "third")]
    worker.start()
    for job in jobs:
        worker.submit(job)
    states = [wait(book, j.id) for j in jobs]
    worker.stop()
    assert seen == ["first", "bad", "third"]
    assert [s["state"] for s in states] == ["done", "failed", "done"]
    assert states[1]["error"] == "ValueError: inject: context 'bad' is empty" and states[2]["version"] == 3


def test_a_full_queue_answers_429_and_keeps_nothing(tmp_path):
    lm = tiny_lm(seed=0)
    engine = Engine(KnowledgeStore.create(tmp_path / "kb", "selfparam", lm.name), lm)
    app = create_app(engine, ServerSettings(max_queued_jobs=1))
    client = TestClient(app)  # no lifespan: the worker never starts, so the first job stays queued
    assert client.post("/v1/knowledge", json={"text": "one"}).status_code == 202
    r = client.post("/v1/knowledge", json={"text": "two"})
    assert r.status_code == 429 and "already waiting" in r.json()["error"]["message"]
    assert len(client.get("/v1/jobs").json()["data"]) == 1
