"""Per-device lifecycle keys, read from a key file (docs/lifecycle.md, "Key file").

Each terminal has its own 32-byte HMAC-SHA256 key, derived by the manufacturer at production.
pos-sim never holds a master key and never derives one key from another: it signs a lifecycle
request only with the key listed for that terminal's serial number in a key file::

    # pos-sim lifecycle keys
    format = "pos-sim-keys"
    version = 1

    [keys]
    SP0000123 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

The file is ``--keys FILE``, else ``POS_SIM_KEYS``, else ``keys.toml`` in the user's config
directory (platformdirs).  Like an SSH private key it must not be readable by other users: a
file with any group or other permission bit is refused (``chmod 600``).  Keys never appear in
an error message, a log or the registry; :func:`fingerprint` names a key without revealing it.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from drivers.files import write_atomically
from pos_sim import exitcodes

ENV_VAR = "POS_SIM_KEYS"
FORMAT = "pos-sim-keys"
VERSION = 1
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
_SERIAL = re.compile(r"[A-Za-z0-9._-]{1,64}")


class KeyFileError(Exception):
    """The key file is missing, unreadable, malformed, or has no key for this terminal.

    The message never repeats anything read from the file: a key pasted in the wrong place
    would otherwise end up on the screen.
    """

    exit_code = exitcodes.USAGE


def default_path() -> Path:
    """``POS_SIM_KEYS`` if set, else ``keys.toml`` in the user's config directory."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir("pos-sim")) / "keys.toml"


def fingerprint(key: bytes) -> str:
    """A short name for a key that reveals nothing about it (first 8 hex digits of its SHA-256)."""
    return hashlib.sha256(b"pos-sim key fingerprint\x00" + key).hexdigest()[:8]


@dataclass(frozen=True)
class KeyFile:
    """The keys of a key file, by serial number (``repr`` never shows them)."""

    path: Path
    keys: dict[str, bytes] = field(repr=False)

    @classmethod
    def load(cls, path: str | Path | None = None) -> KeyFile:
        """Read and check a key file; :class:`KeyFileError` says what is wrong and what to do."""
        p = Path(path).expanduser() if path else default_path()
        try:
            st = p.stat()
            if not stat.S_ISREG(st.st_mode):
                raise KeyFileError(f"key file {p} is not a regular file")
            if st.st_mode & 0o077:
                raise KeyFileError(f"key file {p} can be read by other users (mode {stat.S_IMODE(st.st_mode):o}); "
                                   f"run: chmod 600 {p}")
            raw = p.read_bytes()
        except FileNotFoundError:
            raise KeyFileError(f"no key file at {p}: lifecycle operations need this terminal's key "
                               f"(give --keys FILE or set {ENV_VAR}; format in docs/lifecycle.md)") from None
        except PermissionError:
            raise KeyFileError(f"cannot read key file {p}: permission denied") from None
        except OSError as exc:
            raise KeyFileError(f"cannot read key file {p}: {exc.strerror or exc}") from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            # the parser's message can quote the offending line, which may hold a key: say where only
            where = re.search(r"at line (\d+)", str(exc))
            at = f" (line {where.group(1)})" if where else ""
            raise KeyFileError(f"key file {p} is not valid TOML{at}; format in docs/lifecycle.md") from None
        return cls(p, _parse(p, data))

    def key_for(self, serial: str) -> bytes:
        """The key of ``serial``; :class:`KeyFileError` naming the file if there is none."""
        try:
            return self.keys[serial]
        except KeyError:
            raise KeyFileError(f"no key for terminal {serial} in {self.path}: add its key from the "
                               f"manufacturer as {serial} = \"<64 hex digits>\" under [keys]") from None

    def with_key(self, serial: str, key: bytes) -> KeyFile:
        """A copy with ``serial``'s key set (not saved)."""
        _check_serial(self.path, serial)
        if len(key) != 32:
            raise KeyFileError(f"a lifecycle key is 32 bytes, not {len(key)}")
        return KeyFile(self.path, {**self.keys, serial: key})

    def save(self) -> None:
        """Write the file atomically with mode 600."""
        lines = ["# pos-sim lifecycle keys: one 32-byte key per terminal, as 64 hex digits.",
                 "# Keep this file private (mode 600). Format: docs/lifecycle.md.",
                 f'format = "{FORMAT}"', f"version = {VERSION}", "", "[keys]"]
        lines += [f'{serial} = "{key.hex()}"' for serial, key in sorted(self.keys.items())]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, "\n".join(lines) + "\n", mode=0o600)


def _check_serial(path: Path, serial: str) -> None:
    if not _SERIAL.fullmatch(serial):
        raise KeyFileError(f"key file {path}: {serial!r} is not a serial number (letters, digits, . _ -)")


def _parse(path: Path, data: dict[str, object]) -> dict[str, bytes]:
    if data.get("format") != FORMAT:
        raise KeyFileError(f'key file {path} does not start with format = "{FORMAT}"; format in docs/lifecycle.md')
    if data.get("version") != VERSION:
        raise KeyFileError(f"key file {path} is not version {VERSION}, the one this pos-sim reads "
                           f"(version = {VERSION}); format in docs/lifecycle.md")
    unknown = set(data) - {"format", "version", "keys"}
    if unknown:
        raise KeyFileError(f"key file {path} has {len(unknown)} unknown top-level "
                           f"entr{'y' if len(unknown) == 1 else 'ies'}: only format, version and [keys] belong "
                           f"there (every key goes under [keys])")
    table = data.get("keys", {})
    if not isinstance(table, dict):
        raise KeyFileError(f"key file {path}: [keys] must be a table of serial = \"<64 hex digits>\"")
    keys: dict[str, bytes] = {}
    for n, (serial, value) in enumerate(table.items(), 1):
        if not _SERIAL.fullmatch(serial) or _HEX_KEY.fullmatch(serial):
            # the name may be a key pasted on the wrong side of the = : say where, not what
            raise KeyFileError(f"key file {path}: entry {n} under [keys] is not named by a serial number "
                               f"(letters, digits, . _ -); each line is SERIAL = \"<64 hex digits>\"")
        if not isinstance(value, str) or not _HEX_KEY.fullmatch(value):
            raise KeyFileError(f"key file {path}: the key of {serial} must be 64 hex digits (32 bytes)")
        keys[serial] = bytes.fromhex(value)
    return keys


__all__ = ["ENV_VAR", "KeyFile", "KeyFileError", "default_path", "fingerprint"]
