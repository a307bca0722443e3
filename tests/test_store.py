"""The versioned store: versions, rollback and roll forward, branching, metrics, the writer lock, and an
interrupted rollback; on a plain in-memory method and on a real weight-update method (FT(C), tiny model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from selfparam.methods.base import Context
from selfparam.store import KnowledgeStore, StoreLockedError

if TYPE_CHECKING:  # torch is imported where the tiny-model tests use it: the subprocesses below import this
    import torch  # module and should not pay for it


class Notebook:
    """A method that keeps its contexts in a list and saves them as JSON: what a store must version."""

    name = "notebook"

    def __init__(self):
        self.texts: list[str] = []
        self.fail_load = False

    def inject(self, contexts):
        self.texts += [c.text for c in contexts]

    def answer(self, queries, max_new_tokens=32):
        return [self.texts[-1] if self.texts else "" for _ in queries]

    def score(self, queries, targets):
        return [float(t in self.texts) for t in targets]

    def reset(self):
        self.texts = []

    def save(self, path: Path):
        path.mkdir(parents=True)
        (path / "notes.json").write_text(json.dumps({"method": self.name, "texts": self.texts}))

    def load(self, path: Path):
        texts = json.loads((Path(path) / "notes.json").read_text())["texts"]
        if self.fail_load:
            self.texts = ["half-loaded"]
            raise RuntimeError("interrupted while loading")
        self.texts = texts

    def storage_bytes(self):
        return sum(len(t) for t in self.texts)


def ctx(i: int) -> list[Context]:
    return [Context(f"c{i}", f"fact number {i}")]


def test_versions_rollback_branch_and_metrics(tmp_path):
    store = KnowledgeStore.create(tmp_path / "kb", "notebook", "tiny")
    method = Notebook()
    assert [v.number for v in store.versions()] == [0] and store.current == 0
    v1 = store.add(method, ctx(1))
    v2 = store.add(method, ctx(2))
    assert (v1.number, v1.parent, v2.number, v2.parent) == (1, 0, 2, 1)
    assert v2.contexts == [{"id": "c2", "sha256": v2.contexts[0]["sha256"], "chars": len("fact number 2")}]
    assert len(v2.contexts[0]["sha256"]) == 64 and v2.current and store.current == 2
    assert method.texts == ["fact number 1", "fact number 2"]

    store.activate(1, method)  # rollback: the method holds version 1 again, version 2 is kept
    assert store.current == 1 and method.texts == ["fact number 1"]
    assert [v.number for v in store.versions()] == [0, 1, 2]
    v3 = store.add(method, ctx(3))  # a branch off version 1
    assert (v3.number, v3.parent) == (3, 1) and method.texts == ["fact number 1", "fact number 3"]
    assert store.chain(3) == [1, 3] and store.chain(2) == [1, 2]

    store.activate(2, method)  # roll forward onto the other branch
    assert method.texts == ["fact number 1", "fact number 2"]
    store.record_metrics(2, {"qa_f1": 0.5})
    store.record_metrics(2, {"em": 0.25})

    reopened = KnowledgeStore.open(tmp_path / "kb")
    assert reopened.current == 2 and reopened.version(2).metrics == {"qa_f1": 0.5, "em": 0.25}
    assert [v.to_dict()["current"] for v in reopened.versions()] == [False, False, True, False]
    json.dumps([v.to_dict() for v in reopened.versions()])
    fresh = Notebook()
    reopened.materialize(fresh, 3)
    assert fresh.texts == ["fact number 1", "fact number 3"]
    reopened.materialize(fresh, 0)
    assert fresh.texts == []


def test_bad_requests_change_nothing(tmp_path):
    store = KnowledgeStore.create(tmp_path / "kb", "notebook", "tiny")
    method = Notebook()
    store.add(method, ctx(1))
    before = (tmp_path / "kb" / "store.json").read_text()
    with pytest.raises(ValueError, match="no version 7"):
        store.activate(7, method)
    with pytest.raises(ValueError, match="holds 'notebook' knowledge"):
        store.add(type("Other", (), {"name": "other"})(), ctx(2))
    with pytest.raises(ValueError, match="no contexts"):
        store.add(method, [])
    with pytest.raises(TypeError):
        store.record_metrics(1, {"bad": object()})
    assert (tmp_path / "kb" / "store.json").read_text() == before
    with pytest.raises(FileExistsError):
        KnowledgeStore.create(tmp_path / "kb", "notebook", "tiny")
    with pytest.raises(FileNotFoundError, match="not a saved injection"):
        KnowledgeStore.open(tmp_path)


def test_failed_inject_stores_nothing(tmp_path):
    store = KnowledgeStore.create(tmp_path / "kb", "notebook", "tiny")
    method = Notebook()
    store.add(method, ctx(1))

    def boom(contexts):
        raise RuntimeError("training diverged")

    method.inject = boom
    with pytest.raises(RuntimeError):
        store.add(method, ctx(2))
    assert KnowledgeStore.open(tmp_path / "kb").current == 1
    assert [v.number for v in KnowledgeStore.open(tmp_path / "kb").versions()] == [0, 1]
    assert not list((tmp_path / "kb").glob(".staging*"))


def test_interrupted_rollback_keeps_the_previous_version(tmp_path):
    store = KnowledgeStore.create(tmp_path / "kb", "notebook", "tiny")
    method = Notebook()
    store.add(method, ctx(1))
    store.add(method, ctx(2))
    method.fail_load = True
    with pytest.raises(RuntimeError, match="interrupted"):
        store.activate(1, method)
    assert KnowledgeStore.open(tmp_path / "kb").current == 2
    method.fail_load = False
    store.materialize(method)
    assert method.texts == ["fact number 1", "fact number 2"]


def test_second_writer_is_refused_and_a_dead_holders_lock_is_taken_over(tmp_path):
    store = KnowledgeStore.create(tmp_path / "kb", "notebook", "tiny")
    other = KnowledgeStore.open(tmp_path / "kb")
    with store:  # held, as a server holds its store
        assert (tmp_path / "kb" / ".lock").read_text().strip() == str(os.getpid())
        with pytest.raises(StoreLockedError, match=f"pid {os.getpid()}"):
            other.add(Notebook(), ctx(1))
        with pytest.raises(StoreLockedError):
            other.activate(0)
        store.add(Notebook(), ctx(1))  # the holder itself may write
    other.add(Notebook(), ctx(2))  # released: the other writer goes ahead
    assert [v.number for v in KnowledgeStore.open(tmp_path / "kb").versions()] == [0, 1, 2]

    # a lock file left by a process that died: its pid is not running, the lock is free
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "kb" / ".lock").write_text(dead.stdout)
    store.activate(1)
    assert KnowledgeStore.open(tmp_path / "kb").current == 1


def test_lock_held_by_another_process(tmp_path):
    store = KnowledgeStore.create(tmp_path / "kb", "notebook", "tiny")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from selfparam.store import KnowledgeStore
        KnowledgeStore.open({str(tmp_path / 'kb')!r}).hold()
        print("held", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreLockedError, match=f"pid {holder.pid}"):
            store.activate(0)
    finally:
        holder.kill()
        holder.wait()
    store.activate(0)  # the holder died: its lock is taken over


def test_killed_rollback_leaves_the_previous_version(tmp_path):
    """A rollback killed part-way (SIGKILL while it replays the version) never changes the current one."""
    store = KnowledgeStore.create(tmp_path / "kb", "notebook", "tiny")
    method = Notebook()
    store.add(method, ctx(1))
    store.add(method, ctx(2))
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_store import Notebook
        from selfparam.store import KnowledgeStore

        class Dies(Notebook):
            def load(self, path):
                os.kill(os.getpid(), signal.SIGKILL)

        KnowledgeStore.open({str(tmp_path / 'kb')!r}).activate(1, Dies())
    """)
    result = subprocess.run([sys.executable, "-c", script],
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert result.returncode == -9
    after = KnowledgeStore.open(tmp_path / "kb")
    assert after.current == 2
    after.activate(1)  # and the lock of the killed process does not block anyone
    assert KnowledgeStore.open(tmp_path / "kb").current == 1


# -- a weight-update method on the tiny model: the saved-injection format as versions --------------------

@pytest.fixture
def ftc(tiny):
    from selfparam.methods.base import Resources
    from selfparam.methods.finetune import FineTuneContextConfig
    from selfparam.methods.registry import build_method
    from selfparam.targets import TargetConfig
    from selfparam.training.trainer import TrainConfig

    config = FineTuneContextConfig(train=TrainConfig(epochs=2, batch_size=2, lr=5e-2))
    # a budget of 2 sequences per context (2 steps an update): the default 50 pairs would train each of these
    # tests' 3-4 updates for 50 steps, where the versions only need weights that differ
    method = build_method("ft-c", tiny, config, Resources(targets=TargetConfig(n_pairs=2)))
    method.progress = False
    return method


def _weights(method) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in method.lm.model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_weight_updates_as_versions(ftc, tiny, tmp_path):
    from selfparam.injections import export_merged, load_injection

    store = KnowledgeStore.create(tmp_path / "kb", "ft-c", tiny.name)
    base = _weights(ftc)
    store.add(ftc, [Context("a", "Quenby hosts the Zorblat festival every month.")])
    after1 = _weights(ftc)
    store.add(ftc, [Context("b", "The glass boats of Quenby are blue.")])
    after2 = _weights(ftc)
    assert not _same(after1, base) and not _same(after2, after1)
    assert (tmp_path / "kb" / "updates" / "0002" / "adapter_model.safetensors").is_file()
    assert json.loads((tmp_path / "kb" / "injection.json").read_text())["updates"] == 2

    store.activate(1, ftc)
    assert _same(_weights(ftc), after1)
    store.activate(0, ftc)
    assert _same(_weights(ftc), base)
    store.activate(2, ftc)
    assert _same(_weights(ftc), after2)
    store.activate(1, ftc)
    store.add(ftc, [Context("c", "Zorblat is a festival of lanterns.")])  # version 3 on top of 1
    assert store.chain(3) == [1, 3]

    # the saved-injection readers follow the store: current version by default, any version on request
    _, loaded = load_injection(tmp_path / "kb", lm=tiny, version=2)
    assert _same(_weights(loaded), after2)
    out = export_merged(tmp_path / "kb", tmp_path / "hf1", lm=tiny, version=1)
    from transformers import AutoModelForCausalLM

    exported = AutoModelForCausalLM.from_pretrained(out)
    assert _same({k: v for k, v in exported.state_dict().items()}, after1)


def test_a_saved_injection_opens_as_a_chain(ftc, tiny, tmp_path):
    ftc.inject([Context("a", "Quenby hosts the Zorblat festival every month.")])
    after1 = _weights(ftc)
    ftc.inject([Context("b", "The glass boats of Quenby are blue.")])
    ftc.save(tmp_path / "run")
    store = KnowledgeStore.open(tmp_path / "run")
    assert [(v.number, v.parent) for v in store.versions()] == [(0, None), (1, 0), (2, 1)]
    assert store.current == 2 and store.version(1).contexts[0]["id"] == "a"
    assert not (tmp_path / "run" / "store.json").exists()  # opening writes nothing
    store.activate(1, ftc)
    assert _same(_weights(ftc), after1) and KnowledgeStore.open(tmp_path / "run").current == 1
    v3 = store.add(ftc, [Context("c", "Zorblat is a festival of lanterns.")])
    assert (v3.number, v3.parent) == (3, 1)
    assert [v.number for v in KnowledgeStore.open(tmp_path / "run").versions()] == [0, 1, 2, 3]


def test_threads_sharing_a_store_do_not_interleave(tmp_path):
    """A server's rollback request while its background injection runs is refused, not interleaved."""
    import threading

    store = KnowledgeStore.create(tmp_path / "kb", "notebook", "tiny")
    started, finish = threading.Event(), threading.Event()
    method = Notebook()
    inject = method.inject

    def slow_inject(contexts):
        started.set()
        finish.wait(10)
        inject(contexts)

    method.inject = slow_inject
    worker = threading.Thread(target=store.add, args=(method, ctx(1)))
    worker.start()
    try:
        assert started.wait(10)
        with pytest.raises(StoreLockedError, match="busy with another operation"):
            store.activate(0)
    finally:
        finish.set()
        worker.join()
    assert store.current == 1 and [v.number for v in KnowledgeStore.open(tmp_path / "kb").versions()] == [0, 1]


def test_export_a_snapshot_version_and_bad_metrics(tmp_path):
    store = KnowledgeStore.create(tmp_path / "kb", "notebook", "tiny")
    method = Notebook()
    store.add(method, ctx(1))
    store.add(method, ctx(2))
    out = store.export(1, tmp_path / "v1")
    assert json.loads((out / "notes.json").read_text())["texts"] == ["fact number 1"]
    assert json.loads((out / "selfparam_version.json").read_text())["number"] == 1
    with pytest.raises(FileExistsError):
        store.export(2, tmp_path / "v1")
    with pytest.raises(ValueError, match="base model itself"):
        store.export(0, tmp_path / "v0")
    with pytest.raises(ValueError, match="must be a dict"):
        store.record_metrics(1, [0.5])
