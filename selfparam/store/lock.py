"""One writer at a time on a store: an exclusive `flock` on a lock file that names the holder's pid.

The kernel drops the lock when its holder dies, so the lock of a dead process is taken over at once (its
pid is simply overwritten); a live holder, in this process or another, makes the second writer fail with
`StoreLockedError` instead of interleaving with it. The lock file is never deleted: deleting it would let
two writers lock two different files.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path
from typing import Iterator


class StoreLockedError(RuntimeError):
    """Another writer holds the store."""


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return "unknown"
    return f"pid {text}" if text else "unknown"


class StoreLock:
    """An exclusive lock on `path`, re-entrant within one object (its holds are counted)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None
        self._depth = 0
        self._guard = threading.Lock()  # the count is shared by the threads of one object

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        with self._guard:
            if self._fd is None:
                self._fd = self._take()
            self._depth += 1

    def _take(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLockedError(f"{self.path.parent} is being written by another writer ({_holder(self.path)}); "
                                   f"try again when it has finished") from None
        # ours now: a pid left by a dead holder is overwritten
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        return fd

    def release(self) -> None:
        with self._guard:
            if self._fd is None:
                return
            self._depth -= 1
            if self._depth > 0:
                return
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()
