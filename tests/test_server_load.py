"""The load benchmark, briefly, on the tiny model: chat keeps answering without errors while a job runs."""

from __future__ import annotations

import json

import httpx
import pytest
from server_util import DOCUMENT, ThreadServer, teaching_config, wait_job, write_pairs

from selfparam.eval.configs import build_dataclass, config_class
from selfparam.server import Engine, ServerSettings, create_app
from selfparam.server.loadtest import main, percentile
from selfparam.store import KnowledgeStore
from selfparam.testing import tiny_lm


def test_percentile_is_nearest_rank():
    assert percentile([4, 1, 3, 2], 50) == 2 and percentile([4, 1, 3, 2], 95) == 4 and percentile([7], 5) == 7


@pytest.mark.long
def test_load_while_injecting_has_no_errors(tmp_path, capsys):
    lm = tiny_lm(seed=0)
    # 64 pairs x 4 epochs: a few seconds of training, so the load overlaps it
    config = build_dataclass(config_class("ft-s"), teaching_config(write_pairs(tmp_path / "p.jsonl", 64), 64, 4), "t")
    engine = Engine(KnowledgeStore.create(tmp_path / "kb", "ft-s", lm.name), lm, config)
    (tmp_path / "doc.txt").write_text(DOCUMENT)
    with ThreadServer(create_app(engine, ServerSettings())) as server:
        main(["--url", server.url, "--clients", "3", "--seconds", "2", "--teach", str(tmp_path / "doc.txt"),
              "--max-tokens", "4", "--out", str(tmp_path / "load.json")])
        job_id = json.loads((tmp_path / "load.json").read_text())["job"]["id"]
        with httpx.Client(base_url=server.url) as client:
            assert wait_job(client, job_id)["state"] == "done"  # no training left at exit
    figures = json.loads((tmp_path / "load.json").read_text())
    assert json.loads(capsys.readouterr().out) == figures
    assert figures["requests"] > 0 and figures["errors"] == 0
    assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"]
    assert figures["job"]["seen_running"] and figures["answered_during_injection"] > 0
    assert "v0" in figures["versions_answering"]
