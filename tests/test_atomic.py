"""All-or-nothing writes, including a replacement interrupted at each of its steps."""

import errno
import os
from pathlib import Path

import pytest

from selfparam import atomic
from selfparam.atomic import atomic_file, atomic_folder, atomic_write_text, recover_folder


def write_folder(path: Path, name: str, text: str) -> None:
    with atomic_folder(path) as tmp:
        (tmp / name).write_text(text)


def contents(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def failing_replace(monkeypatch, fail_calls: set[int]) -> list[tuple[str, str]]:
    """Make the n-th `os.replace` call (1-based) raise for n in `fail_calls`; returns the calls made."""
    real, calls = os.replace, []

    def fake(src, dst, *args, **kwargs):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) in fail_calls:
            raise OSError(errno.EIO, f"simulated failure of rename {len(calls)}")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", fake)
    return calls


def no_exchange(monkeypatch) -> None:
    """As on a system or filesystem without renameat2(RENAME_EXCHANGE): the two-rename fallback."""
    def refuse(a, b):
        raise OSError(errno.EINVAL, "exchange not supported")

    monkeypatch.setattr(atomic, "_exchange", refuse)


def exchange_works(tmp_path: Path) -> bool:
    a, b = tmp_path / "probe-a", tmp_path / "probe-b"
    a.mkdir()
    b.mkdir()
    try:
        atomic._exchange(a, b)
        return True
    except OSError:
        return False
    finally:
        a.rmdir()
        b.rmdir()


def test_folder_appears_only_when_complete(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as tmp:
            (tmp / "half.txt").write_text("x")
            raise RuntimeError("crash mid-write")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary left behind
    write_folder(target, "a.txt", "a")
    assert contents(target) == {"a.txt": "a"}


def test_overwrite_replaces_whole_and_failure_keeps_the_old(tmp_path):
    target = tmp_path / "out"
    write_folder(target, "old.txt", "old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(target) as tmp:
            (tmp / "new.txt").write_text("new")
            raise KeyboardInterrupt
    assert contents(target) == {"old.txt": "old"}
    write_folder(target, "new.txt", "new")
    assert contents(target) == {"new.txt": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_replacement_is_one_atomic_swap_on_linux(tmp_path, monkeypatch):
    """With RENAME_EXCHANGE no rename ever leaves the path empty: every `os.replace` failing changes nothing."""
    if not exchange_works(tmp_path):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    target = tmp_path / "out"
    write_folder(target, "old.txt", "old")
    calls = failing_replace(monkeypatch, fail_calls=set(range(1, 100)))
    write_folder(target, "new.txt", "new")
    assert calls == []
    assert contents(target) == {"new.txt": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_swap_keeps_the_old_folder(tmp_path, monkeypatch):
    target = tmp_path / "out"
    write_folder(target, "old.txt", "old")

    def broken(a, b):
        raise OSError(errno.EIO, "disk error")

    monkeypatch.setattr(atomic, "_exchange", broken)
    with pytest.raises(OSError, match="disk error"):
        write_folder(target, "new.txt", "new")
    assert contents(target) == {"old.txt": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("fail_at, expected", [
    (set(), {"new.txt": "new"}),  # no failure
    ({1}, {"old.txt": "old"}),  # moving the old folder aside fails
    ({2}, {"old.txt": "old"}),  # moving the new folder in fails: the old one is moved back
])
def test_two_rename_fallback_interrupted_at_each_step(tmp_path, monkeypatch, fail_at, expected):
    target = tmp_path / "out"
    write_folder(target, "old.txt", "old")
    no_exchange(monkeypatch)
    calls = failing_replace(monkeypatch, fail_at)
    if fail_at:
        with pytest.raises(OSError, match="simulated"):
            write_folder(target, "new.txt", "new")
    else:
        write_folder(target, "new.txt", "new")
    assert contents(target) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing aside, no temporary
    assert calls[0] == ("out", ".out.old")


def test_fallback_whose_rollback_fails_is_recovered_on_next_open(tmp_path, monkeypatch):
    target = tmp_path / "out"
    write_folder(target, "old.txt", "old")
    no_exchange(monkeypatch)
    failing_replace(monkeypatch, {2, 3})  # the new folder cannot go in, nor the old one back
    with pytest.raises(OSError, match="simulated"):
        write_folder(target, "new.txt", "new")
    monkeypatch.undo()
    assert not target.exists() and contents(tmp_path / ".out.old") == {"old.txt": "old"}
    with pytest.raises(FileExistsError):  # the old version is back before anything else happens
        with atomic_folder(target, overwrite=False):
            pass
    assert contents(target) == {"old.txt": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_recover_after_a_crash_between_or_after_the_renames(tmp_path):
    target, aside = tmp_path / "out", tmp_path / ".out.old"
    aside.mkdir()  # crashed between the renames: the old version is aside, nothing at the path
    (aside / "old.txt").write_text("old")
    recover_folder(target)
    assert contents(target) == {"old.txt": "old"} and not aside.exists()
    aside.mkdir()  # crashed after the new version went in, before the old one was deleted
    (aside / "older.txt").write_text("older")
    recover_folder(target)
    assert contents(target) == {"old.txt": "old"} and not aside.exists()
    recover_folder(target)  # nothing to do
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_files_and_folders_are_flushed_to_disk(tmp_path, monkeypatch):
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name file descriptors")
    real, synced = os.fsync, []

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    target = tmp_path / "out"
    with atomic_folder(target) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "a.bin").write_bytes(b"a")
        staged = str(tmp)
    assert {staged + "/sub/a.bin", staged + "/sub", staged, str(tmp_path)} <= set(synced)
    synced.clear()
    atomic_write_text(tmp_path / "f.txt", "x")
    assert str(tmp_path) in synced and len(synced) == 2  # the temporary file, then the folder


def test_no_overwrite_refuses_existing(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError):
        with atomic_folder(tmp_path / "out", overwrite=False):
            pass


def test_atomic_write_text(tmp_path):
    path = atomic_write_text(tmp_path / "d" / "f.json", "{}")
    assert path.read_text() == "{}"
    assert [p.name for p in path.parent.iterdir()] == ["f.json"]


def test_atomic_file_failure_keeps_the_old_file(tmp_path):
    path = atomic_write_text(tmp_path / "w.bin", "old")
    with pytest.raises(RuntimeError):
        with atomic_file(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["w.bin"]
    with atomic_file(path) as tmp:
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["w.bin"]
