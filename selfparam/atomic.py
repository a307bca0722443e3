"""All-or-nothing writes: a folder or file appears complete at its path, or not at all.

Everything is written into a temporary sibling first, flushed to disk (`fsync` of every file and folder
in it) and renamed into place, then the parent folder is fsynced, so an error, an interrupt (Ctrl-C),
a killed process or a power loss leaves either the previous content or the new one, never a half-written
artefact.

Replacing an existing folder (a folder cannot be renamed over a non-empty one):
- On Linux (kernel >= 3.15, glibc >= 2.28, and the usual filesystems: ext4, xfs, btrfs, tmpfs) the new
  folder and the old one are swapped in one atomic `renameat2(RENAME_EXCHANGE)`: a reader at any moment,
  even after a crash, finds the old version or the new one at the path, never nothing.
- Elsewhere (or on a filesystem that refuses the swap) the old folder is renamed aside to `.<name>.old`,
  the new one renamed in, and the old one deleted; if the second rename fails, the old folder is renamed
  back before the error propagates. Only a crash of the process between those two renames can leave the
  path missing, with the old version intact at `.<name>.old`: the next `atomic_folder` on the same path,
  or `recover_folder(path)`, puts it back.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Iterator

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
# errors meaning "this system or filesystem cannot swap": fall back to two renames
_CANNOT_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM}


@contextlib.contextmanager
def atomic_folder(path: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces `path` whole, on failure it is removed.

    >>> with atomic_folder("runs/x") as tmp:
    ...     (tmp / "a.json").write_text("{}")
    """
    path = Path(path)
    recover_folder(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose a new folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        _fsync_tree(tmp)
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} appeared while it was being written; choose a new folder")
            _replace_folder(tmp, path)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        _remove(tmp)  # the new folder after a failure, the old one after a swap, nothing after a rename


def recover_folder(path: str | Path) -> None:
    """Finish or undo a folder replacement that a crash cut short (only the two-rename fallback can leave
    one): the old version set aside at `.<name>.old` goes back to `path` if `path` is missing, and is
    deleted if the new version made it into place."""
    path = Path(path)
    aside = _aside(path)
    if not aside.exists():
        return
    if path.exists():
        _remove(aside)
    else:
        os.replace(aside, path)
        _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` for any writer (`save_file`, `torch.save`, `np.save`); on
    success it is flushed to disk and renamed over `path`, on failure it is removed.

    >>> with atomic_file("runs/x/weights.safetensors") as tmp:
    ...     save_file(tensors, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write a text file (UTF-8) through a temporary sibling and a rename."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write a file (e.g. a PNG) through a temporary sibling and a rename."""
    path = Path(path)
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    return path


# --- the steps ------------------------------------------------------------------------------------------

def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _aside(path: Path) -> Path:
    return path.parent / f".{path.name}.old"


def _replace_folder(new: Path, path: Path) -> None:
    """Put the folder `new` at `path`, where a folder already is; afterwards `new` holds the old one or
    nothing. The old folder stays at `path` if this raises."""
    try:
        _exchange(new, path)
        return
    except OSError as e:
        if e.errno not in _CANNOT_EXCHANGE:
            raise
    aside = _aside(path)
    os.replace(path, aside)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(aside, path)  # roll back; if this fails too, `recover_folder` finds the old one aside
        raise
    _fsync_dir(path.parent)
    _remove(aside)


def _exchange(a: Path, b: Path) -> None:
    """Swap two existing paths atomically (Linux `renameat2(RENAME_EXCHANGE)`); OSError with an errno in
    `_CANNOT_EXCHANGE` where the system or filesystem cannot."""
    fn = _renameat2()
    if fn is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available here")
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(a), None, str(b))


@lru_cache(maxsize=1)
def _renameat2():
    """glibc's renameat2, or None off Linux or on a glibc older than 2.28."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make the folder's entries (renames, new files) durable; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; the rename itself is still atomic
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every regular file and folder under `root` (links are not followed)."""
    for folder, _, files in os.walk(root):
        for name in files:
            file = Path(folder) / name
            if file.is_file() and not file.is_symlink():
                _fsync_file(file)
        _fsync_dir(Path(folder))
