"""kill -9 during an injection, restart: the last complete version serves, the job is reported failed,
and the store has nothing half-written (a new injection then succeeds on it).

The server that is killed is a real `selfparam serve` process; the restart opens the same store folder the way
`serve` does (`open_or_create_store`, `hold`, `load_lm`, `create_app`), in this process, which saves a second
interpreter start (about 5 s of imports and model loading)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from server_util import DOCUMENT, QUESTION, ThreadServer, wait_job, write_pairs

from selfparam.lm import load_lm
from selfparam.server import Engine, create_app
from selfparam.server.setup import method_settings, open_or_create_store
from selfparam.store import KnowledgeStore
from selfparam.testing import tiny_lm

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(model: Path, store: Path, config: dict, folder: Path) -> tuple[subprocess.Popen, str]:
    config_file = folder / f"config-{time.monotonic_ns()}.json"
    config_file.write_text(json.dumps(config))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    log = open(folder / f"server-{port}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "selfparam", "serve", "--model", str(model), "--store", str(store),
                             "--port", str(port), "--method-config", str(config_file), "--device", "cpu",
                             "--dtype", "fp32"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {(folder / f'server-{port}.log').read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start in 120 s")


def selfparam_config(pairs: Path, n_pairs: int, epochs: int) -> dict:
    return {"targets": {"pairs_file": str(pairs), "n_pairs": n_pairs, "answers": "generator"},
            "train": {"epochs": epochs}}


def answer(url: str) -> dict:
    r = httpx.post(f"{url}/v1/chat/completions", timeout=30,
                   json={"model": "current", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 8})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.long
def test_kill_9_mid_injection_then_restart(tmp_path):
    model = tmp_path / "tiny"
    lm = tiny_lm(seed=0)
    lm.model.save_pretrained(model)
    lm.tokenizer.save_pretrained(model)
    store = tmp_path / "kb"
    slow = selfparam_config(write_pairs(tmp_path / "many.jsonl", 400), 400, 3)  # ~20 s of training on 2 cores

    proc, url = start(model, store, slow, tmp_path)
    try:
        before = answer(url)
        job_id = httpx.post(f"{url}/v1/knowledge", json={"text": DOCUMENT}).json()["id"]
        with httpx.Client(base_url=url) as client:
            job = wait_job(client, job_id, timeout=60, until=("running", "done", "failed"))
        while job["state"] == "running" and not job["stage"].startswith("injecting"):
            time.sleep(0.02)  # not a busy loop: the server needs the cores to reach the training
            job = httpx.get(f"{url}/v1/jobs/{job_id}").json()
        assert job["state"] == "running", job
        time.sleep(0.5)  # well inside the training
        assert httpx.get(f"{url}/v1/jobs/{job_id}").json()["state"] == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    on_disk = KnowledgeStore.open(store)
    assert [v.number for v in on_disk.versions()] == [0] and on_disk.current == 0

    quick = tmp_path / "quick.json"
    quick.write_text(json.dumps(selfparam_config(write_pairs(tmp_path / "few.jsonl", 8), 8, 1)))
    knowledge = open_or_create_store(store, "selfparam", str(model))  # as `selfparam serve` opens it
    knowledge.hold()  # the killed server's lock file is left behind; its pid is dead, so this writer may go on
    try:
        engine = Engine(knowledge, load_lm(knowledge.base_model, device="cpu", dtype="fp32"),
                        method_settings(knowledge.method_name, quick))
        with ThreadServer(create_app(engine)) as server, httpx.Client(base_url=server.url, timeout=30) as client:
            failed = client.get(f"/v1/jobs/{job_id}").json()
            assert failed["state"] == "failed"
            assert "interrupted" in failed["error"] and "version 0 is serving" in failed["error"]
            assert client.get("/v1/versions").json()["current"] == 0
            after = answer(server.url)
            assert after["model"] == "v0" and after["choices"] == before["choices"]
            # the store is intact: the next injection writes version 1 and it serves
            job = wait_job(client, client.post("/v1/knowledge", json={"text": DOCUMENT}).json()["id"])
            assert job["state"] == "done" and job["version"] == 1, job
            assert answer(server.url)["model"] == "v1"
    finally:
        knowledge.close()
    assert [v.number for v in KnowledgeStore.open(store).versions()] == [0, 1]
    assert not list(store.glob(".staging*")), list(store.iterdir())
