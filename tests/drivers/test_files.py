"""drivers/files.py: a file is replaced whole or not at all, durably, with one clear error on a full disk."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from drivers.files import DiskFull, FileWriteError, write_atomically


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_writes_bytes_and_text(tmp_path: Path) -> None:
    assert write_atomically(tmp_path / "a.bin", b"\x00\xff") == tmp_path / "a.bin"
    write_atomically(tmp_path / "b.txt", "电池 ok\n")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\xff"
    assert (tmp_path / "b.txt").read_bytes() == "电池 ok\n".encode()
    assert _names(tmp_path) == ["a.bin", "b.txt"]


def test_replaces_an_old_file_and_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "r.md"
    path.write_text("old")
    path.chmod(0o640)
    write_atomically(path, "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_an_explicit_mode_wins(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text("old")
    path.chmod(0o644)
    write_atomically(path, "secret", mode=0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_new_file_gets_what_open_would_give(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_atomically(tmp_path / "new", "x")
        with open(tmp_path / "plain", "w") as f:    # the oracle: what a plain open() creates
            f.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o640


@pytest.mark.parametrize("failing", ["fsync", "replace", "fchmod"])
def test_a_full_disk_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                failing: str) -> None:
    path = tmp_path / "state.json"
    path.write_text("the previous state")

    def no_space(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, failing, no_space)
    with pytest.raises(DiskFull) as caught:
        write_atomically(path, "the new state, never seen")
    monkeypatch.undo()
    assert caught.value.errno == errno.ENOSPC
    assert str(caught.value) == f"cannot write {path}: No space left on device"
    assert path.read_text() == "the previous state"
    assert _names(tmp_path) == ["state.json"]


def test_another_failure_is_a_file_write_error_and_still_an_os_error(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.html"
    path.write_text("before")

    def denied(*args: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(os, "replace", denied)
    with pytest.raises(OSError) as caught:      # callers that catch OSError keep working
        write_atomically(path, "after")
    monkeypatch.undo()
    assert type(caught.value) is FileWriteError
    assert caught.value.errno == errno.EACCES and caught.value.filename == str(path)
    assert path.read_text() == "before"
    assert _names(tmp_path) == ["r.html"]


def test_a_missing_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileWriteError) as caught:
        write_atomically(tmp_path / "nowhere" / "f", "x")
    assert caught.value.errno == errno.ENOENT
    assert "\n" not in str(caught.value) and "nowhere" in str(caught.value)


def test_an_interrupt_mid_write_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f"
    path.write_text("old")

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, "new")
    monkeypatch.undo()
    assert path.read_text() == "old"
    assert _names(tmp_path) == ["f"]


def test_the_file_then_the_rename_then_the_folder_reach_the_disk(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The order that makes it durable: fsync the data, rename, fsync the folder that holds the rename."""
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        events.append("fsync folder" if stat.S_ISDIR(st.st_mode) else "fsync file")
        if stat.S_ISDIR(st.st_mode):
            assert os.path.samestat(st, os.stat(tmp_path))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_atomically(tmp_path / "f", "data")
    assert events == ["fsync file", "replace", "fsync folder"]


def test_a_real_full_disk(small_disk: Path) -> None:
    path = small_disk / "report.json"
    write_atomically(path, "small and whole")
    with pytest.raises(DiskFull) as caught:
        write_atomically(path, b"x" * 65536)
    assert caught.value.errno == errno.ENOSPC
    assert path.read_text() == "small and whole"
    assert _names(small_disk) == ["report.json"]
