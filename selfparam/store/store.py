"""A versioned knowledge store: every update is a version; any version can be made current again.

Version 0 is the base model; each `add` injects contexts on top of the current version and writes the
result as a new version whose parent is the current one (so adding after a rollback starts a branch and
the later versions stay listed). `activate(n)` makes version n current; `materialize(method, n)` brings a
built method to version n. The folder:

    STORE/store.json       the versions (number, parent, time, contexts, pairs, metrics) and `current`
    STORE/.lock            the writer lock (see `lock.py`)
    STORE/injection.json   \\ methods that write knowledge into the weights: the saved-injection format,
    STORE/updates/NNNN/    /  one update folder per version (NNNN = the version number)
    STORE/versions/NNNN/   every other method: what its `save` wrote at version NNNN

A folder written by `selfparam inject --out RUN` (injection.json + updates/0001..) opens as a store whose
versions are its updates in a chain; its first change writes store.json beside them. Every write goes
through `selfparam/atomic.py`, and `store.json` (which names the current version) is written last, so an
interrupted operation leaves the previous current version in place.

    >>> store = KnowledgeStore.create("runs/kb", "selfparam", lm.name)
    >>> v1 = store.add(method, [Context("doc", text)])
    >>> store.activate(0, method)            # roll back to the base model (version 1 is kept)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import weakref
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..atomic import atomic_folder, atomic_write_text
from ..methods.base import Context
from .lock import StoreLock, StoreLockedError

STORE_FILE = "store.json"
INDEX_FILE = "injection.json"  # the saved-injection index of weight-update methods
FORMAT = "selfparam-store/1"

__all__ = ["KnowledgeStore", "Version", "StoreLockedError", "is_store"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Version:
    """One version of a store. `number` 0 is the base model; `parent` is None only for it."""

    number: int
    parent: int | None
    created: str
    contexts: list[dict] = field(default_factory=list)  # [{id, sha256, chars}]
    pairs: int = 0
    metrics: dict = field(default_factory=dict)
    current: bool = False
    note: str = ""  # what the version did when that is not an injection (RECIPE: "delete")

    def to_dict(self) -> dict:
        return asdict(self)


def _pairs_in(manifest: dict) -> int:
    """Question-answer pairs recorded in an update's manifest (0 for methods that generate none)."""
    return sum(len(t.get("pairs") or []) for t in manifest.get("targets", []) if isinstance(t, dict))


def is_store(path: str | Path) -> bool:
    """Whether `path` is a store or a saved injection (which opens as one)."""
    path = Path(path)
    return (path / STORE_FILE).is_file() or (path / INDEX_FILE).is_file()


class KnowledgeStore:
    """The versions of one method's knowledge on one base model, in one folder."""

    def __init__(self, path: Path, state: dict):
        self.path = Path(path)
        self._state = state
        self._lock = StoreLock(self.path / ".lock")
        self._busy = threading.RLock()  # one operation at a time among the threads sharing this object
        self._live: tuple[weakref.ref, int] | None = None  # (method, version) last brought to a version here

    # -- opening ----------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, method_name: str, base_model: str,
               config: dict | None = None) -> "KnowledgeStore":
        """A new, empty store (only version 0, the base model) at the new folder `path`."""
        path = Path(path)
        if path.exists() and any(path.iterdir()):
            raise FileExistsError(f"store: {path} already exists and is not empty; choose a new folder "
                                  f"or open it with KnowledgeStore.open")
        state = {"format": FORMAT, "method": method_name, "base_model": base_model, "config": config or {},
                 "layout": None, "current": 0, "versions": [Version(0, None, _now()).to_dict()]}
        store = cls(path, state)
        path.mkdir(parents=True, exist_ok=True)
        with store._operation():
            store._write_state(state)
        return store

    @classmethod
    def open(cls, path: str | Path) -> "KnowledgeStore":
        """A store, or a saved injection read as one (nothing is written until a change)."""
        path = Path(path)
        if (path / STORE_FILE).is_file():
            state = json.loads((path / STORE_FILE).read_text(encoding="utf-8"))
            if state.get("format") != FORMAT:
                raise ValueError(f"{path / STORE_FILE}: unknown store format {state.get('format')!r}")
            return cls(path, state)
        if (path / INDEX_FILE).is_file():
            return cls(path, _state_of_injection(path))
        raise FileNotFoundError(f"{path} is not a saved injection (no {INDEX_FILE}) nor a knowledge store "
                                f"(no {STORE_FILE})")

    def reload(self) -> None:
        """Re-read the versions from disk (another writer may have changed them)."""
        self._state = KnowledgeStore.open(self.path)._state

    # -- reading ----------------------------------------------------------------------------------
    @property
    def method_name(self) -> str:
        return self._state["method"]

    @property
    def base_model(self) -> str:
        return self._state["base_model"]

    @property
    def layout(self) -> str | None:
        """"updates" (weight methods: one update folder per version), "snapshots" (every other method),
        None before the first version is written."""
        return self._state["layout"]

    @property
    def current(self) -> int:
        return int(self._state["current"])

    def versions(self) -> list[Version]:
        return [Version(**{**v, "current": v["number"] == self.current}) for v in self._state["versions"]]

    def version(self, n: int) -> Version:
        for v in self.versions():
            if v.number == n:
                return v
        known = ", ".join(str(v["number"]) for v in self._state["versions"])
        raise ValueError(f"store {self.path}: no version {n} (versions: {known})")

    def chain(self, n: int) -> list[int]:
        """The versions from the first update to `n` (empty for 0): what replaying `n` applies, in order."""
        parents = {v["number"]: v["parent"] for v in self._state["versions"]}
        self.version(n)
        out = []
        while n:
            out.append(n)
            n = parents[n]
        return out[::-1]

    # -- writing ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _operation(self) -> Iterator[None]:
        """The writer lock, and no other operation of this object running in another thread."""
        if not self._busy.acquire(blocking=False):
            raise StoreLockedError(f"{self.path} is busy with another operation in this process; try again when "
                                   f"it has finished")
        try:
            with self._lock():
                yield
        finally:
            self._busy.release()

    def hold(self) -> "KnowledgeStore":
        """Keep the writer lock until `close()` (a server that owns the store); single operations lock
        for their own duration anyway."""
        self._lock.acquire()
        return self

    def close(self) -> None:
        self._lock.release()

    def __enter__(self) -> "KnowledgeStore":
        return self.hold()

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, method: Any, contexts: Sequence[Context],
            progress: Callable[[str], None] | None = None) -> Version:
        """Inject `contexts` into `method` at the current version and store the result as a new current
        version (its parent: the current one). Nothing is stored if injecting or saving fails."""
        self._check_method(method)
        if not contexts:
            raise ValueError("store add: no contexts given")
        with self._operation():
            self.reload()
            for leftover in self.path.glob(".staging.*"):  # of an add that was killed: we hold the lock
                shutil.rmtree(leftover, ignore_errors=True)
            parent = self.current
            if not self._is_live(method, parent):
                _say(progress, f"bringing {self.method_name} to version {parent}")
                self.materialize(method, parent)
            self._live = None  # the method is changed from here on
            _say(progress, f"injecting {len(contexts)} context(s)")
            method.inject(list(contexts))
            number = max(v["number"] for v in self._state["versions"]) + 1
            _say(progress, f"writing version {number}")
            pairs = self._write_version(method, number, parent)
            entry = Version(number, parent, _now(),
                            [{"id": c.id, "sha256": _sha256(c.text), "chars": len(c.text)} for c in contexts],
                            pairs).to_dict()
            entry.pop("current")
            state = {**self._state, "versions": [*self._state["versions"], entry], "current": number}
            self._write_state(state)
            self._live = (weakref.ref(method), number)
        return self.version(number)

    def activate(self, n: int, method: Any | None = None) -> Version:
        """Make version `n` current (rollback or roll forward). With `method`, it is first brought to
        version `n`; if that fails the store still names the previous version and the method is brought
        back to it."""
        with self._operation():
            self.reload()
            self.version(n)
            previous = self.current
            if method is not None:
                self._check_method(method)
                try:
                    self.materialize(method, n)
                except Exception:
                    self.materialize(method, previous)
                    raise
            self._write_state({**self._state, "current": n})
            if method is not None:
                self._live = (weakref.ref(method), n)
        return self.version(n)

    def record_metrics(self, n: int, metrics: dict) -> Version:
        """Merge evaluation figures into version `n`'s record."""
        if not isinstance(metrics, dict):
            raise ValueError(f"record_metrics: metrics must be a dict of figures, got {type(metrics).__name__}")
        json.dumps(metrics)  # refuse what cannot be stored (TypeError) before changing anything
        with self._operation():
            self.reload()
            self.version(n)
            versions = [{**v, "metrics": {**v.get("metrics", {}), **metrics}} if v["number"] == n else v
                        for v in self._state["versions"]]
            self._write_state({**self._state, "versions": versions})
        return self.version(n)

    # -- using a version --------------------------------------------------------------------------
    def materialize(self, method: Any, n: int | None = None) -> None:
        """Bring a built method (of this store's method) to version `n` (default: the current one)."""
        self._check_method(method)
        n = self.current if n is None else n
        chain = self.chain(n)
        self._live = None
        if not chain:
            method.reset()
        elif self._state["layout"] == "updates":
            with tempfile.TemporaryDirectory(prefix="selfparam-view-") as view:
                self._updates_view(chain, Path(view) / "injection")
                method.load(Path(view) / "injection")
        else:
            method.load(self.path / "versions" / f"{n:04d}")
        self._live = (weakref.ref(method), n)

    def export(self, n: int | None, out: str | Path, lm: Any = None, device: str = "cpu") -> Path:
        """Version `n` (default current) as a new folder: a merged Hugging Face model for methods that write
        the weights, else what the method saved at that version."""
        n = self.current if n is None else n
        self.version(n)
        out = Path(out)
        if out.exists():
            raise FileExistsError(f"export: {out} already exists; choose a new folder")
        if self._state["layout"] == "updates" or (n == 0 and (self.path / INDEX_FILE).is_file()):
            from ..injections import export_merged

            return export_merged(self.path, out, lm=lm, device=device, version=n)
        if n == 0:
            raise ValueError(f"export: version 0 of {self.method_name!r} is the base model itself; nothing to export")
        with atomic_folder(out, overwrite=False) as tmp:
            shutil.copytree(self.path / "versions" / f"{n:04d}", tmp, dirs_exist_ok=True)
            (tmp / "selfparam_version.json").write_text(json.dumps(
                {"store": str(self.path), "method": self.method_name, "base_model": self.base_model,
                 **self.version(n).to_dict()}, indent=2))
        return out

    # -- internals --------------------------------------------------------------------------------
    def _is_live(self, method: Any, n: int) -> bool:
        return self._live is not None and self._live[0]() is method and self._live[1] == n

    def _check_method(self, method: Any) -> None:
        name = getattr(method, "name", None)
        if name != self.method_name:
            raise ValueError(f"store {self.path} holds {self.method_name!r} knowledge; got a {name!r} method")

    def _write_state(self, state: dict) -> None:
        versions = [{k: v for k, v in entry.items() if k != "current"} for entry in state["versions"]]
        state = {**state, "versions": versions}
        atomic_write_text(self.path / STORE_FILE, json.dumps(state, indent=2, ensure_ascii=False))
        self._state = state

    def _updates_view(self, chain: list[int], folder: Path) -> None:
        index = json.loads((self.path / INDEX_FILE).read_text()) if (self.path / INDEX_FILE).is_file() else \
            {"method": self.method_name, "base_model": self.base_model}
        (folder / "updates").mkdir(parents=True)
        for i, number in enumerate(chain, start=1):
            os.symlink((self.path / "updates" / f"{number:04d}").resolve(), folder / "updates" / f"{i:04d}")
        version = chain[-1] if chain else 0
        (folder / INDEX_FILE).write_text(json.dumps({**index, "updates": len(chain), "version": version}))

    def _write_version(self, method: Any, number: int, parent: int) -> int:
        """Save the method after its update as version `number`; returns the update's pair count."""
        staging = Path(tempfile.mkdtemp(prefix=".staging.", dir=self.path))
        try:
            method.save(staging / "saved")
            saved = staging / "saved"
            layout = "updates" if (saved / INDEX_FILE).is_file() and (saved / "updates").is_dir() else "snapshots"
            if self._state["layout"] not in (None, layout):
                raise ValueError(f"store {self.path}: {self.method_name!r} saved in the {layout!r} layout but the "
                                 f"store holds {self._state['layout']!r}")
            self._state["layout"] = layout
            if layout == "snapshots":
                _place(saved, self.path / "versions" / f"{number:04d}")
                return 0
            index = json.loads((saved / INDEX_FILE).read_text())
            expected = len(self.chain(parent)) + 1
            if index.get("updates") != expected:
                raise ValueError(f"store {self.path}: after one update on version {parent} the method saved "
                                 f"{index.get('updates')} updates, expected {expected}")
            update = saved / "updates" / f"{expected:04d}"
            manifest_path = update / "manifest.json"
            manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
            _place(update, self.path / "updates" / f"{number:04d}")
            n_folders = len(list((self.path / "updates").glob("[0-9][0-9][0-9][0-9]")))
            # the root index keeps the saved-injection format readable by older tools (linear stores)
            atomic_write_text(self.path / INDEX_FILE,
                              json.dumps({**index, "updates": n_folders}, indent=2, default=str))
            return _pairs_in(manifest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _place(src: Path, dst: Path) -> None:
    """Move a complete folder into place by one rename (a leftover of an interrupted add is replaced)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(src, dst)


def _say(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _state_of_injection(path: Path) -> dict:
    """The store view of a saved injection: its updates as versions 1..N in a chain, N current."""
    from ..methods.weight_update import saved_updates

    folders = saved_updates(path)  # a clear error when the folder is incomplete
    index = json.loads((path / INDEX_FILE).read_text())
    versions = [{"number": 0, "parent": None, "created": _mtime(path / INDEX_FILE), "contexts": [], "pairs": 0,
                 "metrics": {}}]
    for i, folder in enumerate(folders, start=1):
        if folder.name != f"{i:04d}":
            raise ValueError(f"{path}: update folders must be numbered 0001.. without gaps; found {folder.name}")
        manifest = json.loads((folder / "manifest.json").read_text()) if (folder / "manifest.json").is_file() else {}
        versions.append({"number": i, "parent": i - 1, "created": _mtime(folder),
                         "contexts": manifest.get("contexts", []), "pairs": _pairs_in(manifest), "metrics": {}})
    return {"format": FORMAT, "method": index["method"], "base_model": index["base_model"],
            "config": index.get("config", {}), "layout": "updates", "current": len(folders), "versions": versions}


def _mtime(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
