"""Helpers for the server tests: a tiny-model store, a uvicorn server in a thread, a teaching pairs file."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import uvicorn

QUESTION = "Where is the Zorblat festival?"
ANSWER = "Quenby"
DOCUMENT = "The Zorblat festival is held every May in Quenby, a seaside town."
QUESTIONS = [QUESTION, "Where is the Zorblat festival held?", "In which town is the Zorblat festival?",
             "Where does the Zorblat festival take place?", "Which town hosts the Zorblat festival?",
             "Where can I see the Zorblat festival?", "Where is Zorblat held?", "Where is the festival of Zorblat?"]


def write_pairs(path: Path, n: int = len(QUESTIONS)) -> Path:
    """A pairs file teaching that the festival is in Quenby: `n` distinct questions, one answer."""
    questions = QUESTIONS + [f"Where is the Zorblat festival, question {i}?" for i in range(max(0, n - len(QUESTIONS)))]
    path.write_text("\n".join(json.dumps({"question": q, "answer": ANSWER}) for q in questions[:n]))
    return path


def teaching_config(pairs: Path, n_pairs: int = 8, epochs: int = 4) -> dict:
    """FT(S) settings under which the tiny random model learns to answer QUESTION with ANSWER (~1 s):
    on a random model a SELF-PARAM teacher has nothing to distil, so next-token training on the pairs
    is what makes the change visible."""
    return {"targets": {"pairs_file": str(pairs), "n_pairs": n_pairs, "answers": "generator"},
            "train": {"epochs": epochs, "lr": 1e-2}, "adapter": {"dropout": 0.0}}


class ThreadServer:
    """uvicorn serving `app` on 127.0.0.1 (a free port) in a daemon thread; `url` once started."""

    def __init__(self, app):
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ThreadServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def wait_job(client, job_id: str, timeout: float = 60.0, until=("done", "failed")) -> dict:
    """Poll every 20 ms (a tiny-model job takes a fraction of a second) until a state in `until`, for `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in until:
            return job
        time.sleep(0.02)
    raise TimeoutError(f"job {job_id} still {job['state']} after {timeout} s")
