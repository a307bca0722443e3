"""A bounded load test of a running server: N chat clients for T seconds while an injection runs.

    python -m selfparam.server.loadtest --url http://127.0.0.1:8000 --clients 8 --seconds 60 \\
        --teach docs/quenby.txt --out docs/results/server_load.json

Each client sends one chat request after another (loopback, no think time); a document is posted to
`/v1/knowledge` first so the injection runs under the load. Prints one JSON object: latency p50/p95/max
in ms, requests, errors (non-200 or transport failures; the target is 0), requests answered while the job
was running, and the versions that answered.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import threading
import time
from pathlib import Path

import httpx

from ..atomic import atomic_write_text


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): `percentile([1, 2, 3, 4], 50) == 2`."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def run_load(url: str, clients: int, seconds: float, question: str, document: str | None = None,
             api_key: str | None = None, max_tokens: int = 16, timeout: float = 120.0) -> dict:
    """Run the load and return its figures (see the module docstring)."""
    if clients < 1 or seconds <= 0:
        raise ValueError(f"clients and seconds: must be positive, got {clients} and {seconds}")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    control = httpx.Client(base_url=url, headers=headers, timeout=timeout)
    job_id = None
    if document is not None:
        r = control.post("/v1/knowledge", json={"text": document})
        if r.status_code != 202:
            raise ValueError(f"teaching the document failed: {r.status_code} {r.text[:300]}")
        job_id = r.json()["id"]

    running = threading.Event()  # set while the job is running, as the control thread last saw it
    results: list[tuple[float, bool, str | None, bool]] = []  # (latency s, ok, version, during the injection)
    lock = threading.Lock()
    body = {"model": "current", "messages": [{"role": "user", "content": question}], "max_tokens": max_tokens}
    end = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=timeout) as c:
            while time.monotonic() < end:
                during = running.is_set()
                start = time.monotonic()
                try:
                    r = c.post("/v1/chat/completions", json=body)
                    ok, version = r.status_code == 200, (r.json().get("model") if r.status_code == 200 else None)
                except httpx.HTTPError:
                    ok, version = False, None
                with lock:
                    results.append((time.monotonic() - start, ok, version, during and running.is_set()))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    job_states = []
    while any(t.is_alive() for t in threads):
        if job_id is not None:
            state = control.get(f"/v1/jobs/{job_id}").json()["state"]
            (running.set if state == "running" else running.clear)()
            job_states.append(state)
        time.sleep(0.2)
    job = control.get(f"/v1/jobs/{job_id}").json() if job_id else None

    latencies = [r[0] * 1000 for r in results if r[1]]
    return {
        "clients": clients, "seconds": seconds, "requests": len(results), "errors": sum(not r[1] for r in results),
        "p50_ms": round(percentile(latencies, 50), 1), "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1) if latencies else None,
        "requests_per_s": round(len(results) / seconds, 2),
        "answered_during_injection": sum(1 for r in results if r[1] and r[3]),
        "versions_answering": sorted({r[2] for r in results if r[2]}),
        "job": None if job is None else {"id": job["id"], "state_at_end": job["state"], "version": job["version"],
                                         "seen_running": "running" in job_states, "elapsed_s": job["elapsed_s"]},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--question", default="Where is the Zorblat festival held?")
    parser.add_argument("--teach", type=Path, help="a text file to inject while the load runs")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--api-key-env", help="environment variable holding the server's key")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    key = os.environ.get(args.api_key_env) if args.api_key_env else None
    document = args.teach.read_text(encoding="utf-8") if args.teach else None
    figures = run_load(args.url, args.clients, args.seconds, args.question, document, key, args.max_tokens)
    text = json.dumps(figures, indent=2)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    print(text)


if __name__ == "__main__":
    main()
