"""Reading TOML files and checking their keys, with errors that name the file and the key."""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from timescale_frontier.errors import InvalidInputError

# Largest TOML file we agree to parse: hardware and space files are a few kB.
MAX_FILE_BYTES = 1 << 20


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """Parses ``path``; every failure becomes one ``InvalidInputError`` naming the file."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: {what} file not found") from None
    except OSError as e:
        raise InvalidInputError(f"{path}: cannot read {what} file ({e.strerror})") from None
    if not path.is_file():
        raise InvalidInputError(f"{path}: not a file")
    if size > MAX_FILE_BYTES:
        raise InvalidInputError(f"{path}: {size} bytes is too large for a {what} file (limit {MAX_FILE_BYTES})")
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidInputError(f"{path}: invalid TOML ({e})") from None
    except OSError as e:
        raise InvalidInputError(f"{path}: cannot read {what} file ({e.strerror})") from None


def check_keys(path: Path, section: str, table: dict[str, Any], known: Iterable[str]) -> None:
    """Rejects unknown keys, suggesting the nearest known one."""
    known = list(known)
    for key in table:
        if key not in known:
            near = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else f" (known: {', '.join(known)})"
            raise InvalidInputError(f"{path}: unknown key '{_join(section, key)}'{hint}")


def _join(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key


def number(path: Path, section: str, table: dict[str, Any], key: str, lo: float, hi: float, unit: str) -> float:
    """A required finite number in ``[lo, hi]``; the error names file, key, range and unit."""
    if key not in table:
        raise InvalidInputError(f"{path}: missing key '{_join(section, key)}' ({unit} in [{lo:g}, {hi:g}])")
    v = table[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not lo <= v <= hi:
        raise InvalidInputError(
            f"{path}: {_join(section, key)} = {v!r} is invalid: expected {unit} in [{lo:g}, {hi:g}]"
        )
    return float(v)


def string(path: Path, section: str, table: dict[str, Any], key: str, required: bool = True) -> str | None:
    if key not in table:
        if required:
            raise InvalidInputError(f"{path}: missing key '{_join(section, key)}' (a string)")
        return None
    v = table[key]
    if not isinstance(v, str) or not v.strip():
        raise InvalidInputError(f"{path}: {_join(section, key)} = {v!r} is invalid: expected a non-empty string")
    return v


def table(path: Path, doc: dict[str, Any], key: str, required: bool = True) -> dict[str, Any]:
    if key not in doc:
        if required:
            raise InvalidInputError(f"{path}: missing section [{key}]")
        return {}
    v = doc[key]
    if not isinstance(v, dict):
        raise InvalidInputError(f"{path}: '{key}' must be a [{key}] section, not {type(v).__name__}")
    return v
