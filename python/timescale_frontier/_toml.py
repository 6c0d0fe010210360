"""Reading TOML files and checking their shape: which sections and keys exist, and each value's type.
Ranges are the core's to check; errors raised here name the file and the key."""

from __future__ import annotations

import difflib
import re
import tomllib
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from timescale_frontier.errors import file_error, invalid_value

# Largest TOML file we agree to parse: hardware, space and law files are a few kB.
MAX_FILE_BYTES = 1 << 20


def read_toml(path: Path, what: str, field: str | None = None) -> dict[str, Any]:
    """Parses ``path``; every failure becomes one ``InvalidInputError`` naming the file. Failures
    of the whole file name as their ``field`` the option that gave it (``field``, default ``what``)."""
    field = field or what
    readable = f"a readable {what} file"
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise file_error(
            path, f"{what} file not found", field=field, value=str(path), expected=f"an existing {what} file"
        ) from None
    except OSError as e:
        raise file_error(
            path, f"cannot read {what} file ({e.strerror})", field=field, value=str(path), expected=readable
        ) from None
    if not path.is_file():
        raise file_error(path, "not a file", field=field, value=str(path), expected=f"a {what} file")
    if size > MAX_FILE_BYTES:
        raise file_error(
            path,
            f"{size} bytes is too large for a {what} file (limit {MAX_FILE_BYTES})",
            field=field,
            value=f"{size} bytes",
            expected=f"at most {MAX_FILE_BYTES} bytes",
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise file_error(
            path, "not a UTF-8 text file", field=field, value=str(path), expected="a UTF-8 text file"
        ) from None
    except OSError as e:
        raise file_error(
            path, f"cannot read {what} file ({e.strerror})", field=field, value=str(path), expected=readable
        ) from None
    return parse_toml(text, path, field)


# Deepest nesting (dotted keys, table headers, arrays and inline tables together) and most
# key-value pairs a file may have: ours need 4 levels and a few hundred keys. Checked in one pass
# before parsing, because a parser's cost grows with depth (a 200 kB file with one key 40,000
# levels deep takes a minute and gigabytes).
MAX_NESTING = 32
MAX_KEYS = 20_000


def _check_shape(text: str, path: Path, field: str | None) -> None:
    """Rejects text nested deeper than ``MAX_NESTING`` or with more than ``MAX_KEYS`` keys, in one
    linear pass (strings and comments skipped; a malformed file is left to the parser)."""
    nesting = f"at most {MAX_NESTING} levels of nesting"
    stack: list[str] = []  # open arrays ("[") and inline tables ("{")
    keys = 0
    i, n = 0, len(text)
    at_line_start, in_key = True, True
    dots = 0  # dots of the current key or table header
    while i < n:
        c = text[i]
        if c in "\"'":
            i = _string_end(text, i)
            at_line_start = False
            continue
        if c == "#":
            i = text.find("\n", i)
            i = n if i < 0 else i
            continue
        if c == "\n":
            at_line_start, in_key, dots = True, not stack, 0
        elif c in " \t\r":
            pass
        elif c == "[" and at_line_start and not stack:
            end = text.find("]", i)
            header = text[i : n if end < 0 else end]
            if header.count(".") + 1 > MAX_NESTING:
                raise file_error(
                    path,
                    f"a table header nested more than {MAX_NESTING} levels deep",
                    field=field,
                    value=str(path),
                    expected=nesting,
                )
            i = n if end < 0 else end + 1
            at_line_start = False
            continue
        elif c in "[{" and not in_key:
            stack.append(c)
            if len(stack) + dots > MAX_NESTING:
                raise file_error(
                    path,
                    f"a value nested more than {MAX_NESTING} levels deep",
                    field=field,
                    value=str(path),
                    expected=nesting,
                )
            in_key = c == "{"
        elif c in "]}":
            if stack:
                stack.pop()
        elif c == "," and stack:
            in_key = stack[-1] == "{"
        elif c == "." and in_key:
            dots += 1
            if dots + 1 + len(stack) > MAX_NESTING:
                raise file_error(
                    path,
                    f"a dotted key more than {MAX_NESTING} levels deep",
                    field=field,
                    value=str(path),
                    expected=nesting,
                )
        elif c == "=" and in_key:
            keys += 1
            if keys > MAX_KEYS:
                raise file_error(
                    path,
                    f"more than {MAX_KEYS} keys",
                    field=field,
                    value=str(path),
                    expected=f"at most {MAX_KEYS} keys",
                )
            in_key, dots = False, 0
        at_line_start = False
        i += 1


# What ends or escapes inside a basic string ("..."), and inside a multi-line one ("""...""").
_BASIC_STOP = re.compile(r'[\\"\n]')
_MULTILINE_STOP = re.compile(r'[\\"]')


def _string_end(text: str, i: int) -> int:
    """The index just past the string starting at ``text[i]`` (a quote), in one forward pass: a
    backslash escapes the one character after it whatever it is (so ``"x\\\\\\""`` ends at its
    last quote), literal strings have no escapes, a multi-line string may end in up to two extra
    quotes. An unterminated string ends at the line's end (basic) or the file's (the parser then
    refuses it)."""
    n, quote = len(text), text[i]
    multi = text.startswith(quote * 3, i)
    j = i + (3 if multi else 1)
    if quote == "'" and multi:
        end = text.find("'''", j)
        if end < 0:
            return n
        end += 3
        extra = 0
        while end < n and text[end] == "'" and extra < 2:
            end, extra = end + 1, extra + 1
        return end
    if quote == "'":
        end, newline = text.find("'", j), text.find("\n", j)
        if end < 0 or 0 <= newline < end:
            return n if newline < 0 else newline
        return end + 1
    stop = _MULTILINE_STOP if multi else _BASIC_STOP
    while True:
        m = stop.search(text, j)
        if m is None:
            return n
        k = m.start()
        if text[k] == "\\":
            j = k + 2  # the escaped character, whatever it is
        elif text[k] == "\n":
            return k  # an unterminated basic string: the parser says so
        elif not multi:
            return k + 1
        elif text.startswith('"""', k):
            end = k + 3
            extra = 0
            while end < n and text[end] == '"' and extra < 2:
                end, extra = end + 1, extra + 1
            return end
        else:
            j = k + 1


def parse_toml(text: str, path: Path, field: str | None = None) -> dict[str, Any]:
    """Parses ``text`` (the content of, or the content about to be written to, ``path``) after
    checking its nesting and size; ``field`` names the option that gave the file, in errors."""
    _check_shape(text, path, field)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise file_error(path, f"invalid TOML ({e})", field=field, value=str(path), expected="valid TOML") from None
    except RecursionError:
        raise file_error(
            path,
            f"nested more than {MAX_NESTING} levels deep",
            field=field,
            value=str(path),
            expected=f"at most {MAX_NESTING} levels of nesting",
        ) from None


def check_keys(path: Path, section: str, table: dict[str, Any], known: Iterable[str]) -> None:
    """Rejects unknown keys, suggesting the nearest known one."""
    known = list(known)
    for key in table:
        if key not in known:
            near = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else f" (known: {', '.join(known)})"
            raise file_error(
                path,
                f"unknown key '{_join(section, key)}'{hint}",
                field=_join(section, key),
                value=repr(key),
                expected=f"one of {', '.join(known)}",
            )


def _join(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key


def number(path: Path, section: str, table: dict[str, Any], key: str) -> float:
    """A required number (TOML integer or float, not a boolean). Non-finite values pass through:
    the core's range check names them."""
    if key not in table:
        raise file_error(
            path, f"missing key '{_join(section, key)}' (a number)", field=_join(section, key), expected="a number"
        )
    v = optional_number(path, section, table, key)
    assert v is not None
    return v


def optional_number(path: Path, section: str, table: dict[str, Any], key: str) -> float | None:
    """A number, or ``None`` when the key is absent."""
    if key not in table:
        return None
    v = table[key]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise invalid_value(_join(section, key), v, "a number", path=path)
    return float(v)


def integer(path: Path, section: str, table: dict[str, Any], key: str) -> int:
    """A required TOML integer (not a boolean, not a float)."""
    if key not in table:
        raise file_error(
            path, f"missing key '{_join(section, key)}' (an integer)", field=_join(section, key), expected="an integer"
        )
    v = table[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise invalid_value(_join(section, key), v, "an integer", path=path)
    return v


def string(path: Path, section: str, table: dict[str, Any], key: str) -> str:
    """A required non-empty string."""
    if key not in table:
        raise file_error(
            path, f"missing key '{_join(section, key)}' (a string)", field=_join(section, key), expected="a string"
        )
    v = optional_string(path, section, table, key)
    assert v is not None
    return v


def optional_string(path: Path, section: str, table: dict[str, Any], key: str) -> str | None:
    """A non-empty string, or ``None`` when the key is absent."""
    if key not in table:
        return None
    v = table[key]
    if not isinstance(v, str) or not v.strip():
        raise invalid_value(_join(section, key), v, "a non-empty string", path=path)
    bad = next((ch for ch in v if unicodedata.category(ch) == "Cc" and ch != "\t"), None)
    if bad is not None:
        # Printed later: a terminal would act on escape sequences (clear the screen, set the title).
        raise file_error(
            path,
            f"{_join(section, key)} contains a control character ({bad!r}): expected plain text",
            field=_join(section, key),
            value=repr(v),
            expected="plain text",
        )
    return v


def boolean(path: Path, section: str, table: dict[str, Any], key: str, default: bool) -> bool:
    v = table.get(key, default)
    if not isinstance(v, bool):
        raise invalid_value(_join(section, key), v, "true or false", path=path)
    return v


def table(path: Path, doc: dict[str, Any], key: str, required: bool = True) -> dict[str, Any]:
    if key not in doc:
        if required:
            raise file_error(path, f"missing section [{key}]", field=key, expected=f"a [{key}] section")
        return {}
    v = doc[key]
    if not isinstance(v, dict):
        raise file_error(
            path,
            f"'{key}' must be a [{key}] section, not {type(v).__name__}",
            field=key,
            value=repr(v),
            expected=f"a [{key}] section",
        )
    return v
