"""Reading TOML files and checking their shape: which sections and keys exist, and each value's type.
Ranges are the core's to check; errors raised here name the file and the key."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from timescale_frontier.errors import InvalidInputError

# Largest TOML file we agree to parse: hardware, space and law files are a few kB.
MAX_FILE_BYTES = 1 << 20


def _error(path: Path, message: str) -> InvalidInputError:
    e = InvalidInputError(message)
    e.source = str(path)
    return e


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """Parses ``path``; every failure becomes one ``InvalidInputError`` naming the file."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise _error(path, f"{what} file not found") from None
    except OSError as e:
        raise _error(path, f"cannot read {what} file ({e.strerror})") from None
    if not path.is_file():
        raise _error(path, "not a file")
    if size > MAX_FILE_BYTES:
        raise _error(path, f"{size} bytes is too large for a {what} file (limit {MAX_FILE_BYTES})")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise _error(path, "not a UTF-8 text file") from None
    except OSError as e:
        raise _error(path, f"cannot read {what} file ({e.strerror})") from None
    return parse_toml(text, path)


def parse_toml(text: str, path: Path) -> dict[str, Any]:
    """Parses ``text`` (the content of, or the content about to be written to, ``path``)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _error(path, f"invalid TOML ({e})") from None


def check_keys(path: Path, section: str, table: dict[str, Any], known: Iterable[str]) -> None:
    """Rejects unknown keys, suggesting the nearest known one."""
    known = list(known)
    for key in table:
        if key not in known:
            near = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else f" (known: {', '.join(known)})"
            raise _error(path, f"unknown key '{_join(section, key)}'{hint}")


def _join(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key


def number(path: Path, section: str, table: dict[str, Any], key: str) -> float:
    """A required number (TOML integer or float, not a boolean). Non-finite values pass through:
    the core's range check names them."""
    if key not in table:
        raise _error(path, f"missing key '{_join(section, key)}' (a number)")
    v = optional_number(path, section, table, key)
    assert v is not None
    return v


def optional_number(path: Path, section: str, table: dict[str, Any], key: str) -> float | None:
    """A number, or ``None`` when the key is absent."""
    if key not in table:
        return None
    v = table[key]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _error(path, f"{_join(section, key)} = {v!r} is invalid: expected a number")
    return float(v)


def integer(path: Path, section: str, table: dict[str, Any], key: str) -> int:
    """A required TOML integer (not a boolean, not a float)."""
    if key not in table:
        raise _error(path, f"missing key '{_join(section, key)}' (an integer)")
    v = table[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise _error(path, f"{_join(section, key)} = {v!r} is invalid: expected an integer")
    return v


def string(path: Path, section: str, table: dict[str, Any], key: str) -> str:
    """A required non-empty string."""
    if key not in table:
        raise _error(path, f"missing key '{_join(section, key)}' (a string)")
    v = optional_string(path, section, table, key)
    assert v is not None
    return v


def optional_string(path: Path, section: str, table: dict[str, Any], key: str) -> str | None:
    """A non-empty string, or ``None`` when the key is absent."""
    if key not in table:
        return None
    v = table[key]
    if not isinstance(v, str) or not v.strip():
        raise _error(path, f"{_join(section, key)} = {v!r} is invalid: expected a non-empty string")
    return v


def boolean(path: Path, section: str, table: dict[str, Any], key: str, default: bool) -> bool:
    v = table.get(key, default)
    if not isinstance(v, bool):
        raise _error(path, f"{_join(section, key)} = {v!r} is invalid: expected true or false")
    return v


def table(path: Path, doc: dict[str, Any], key: str, required: bool = True) -> dict[str, Any]:
    if key not in doc:
        if required:
            raise _error(path, f"missing section [{key}]")
        return {}
    v = doc[key]
    if not isinstance(v, dict):
        raise _error(path, f"'{key}' must be a [{key}] section, not {type(v).__name__}")
    return v
