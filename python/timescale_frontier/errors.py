"""The exception tree. The core's errors arrive here through one conversion (``rust/py/src/error.rs``).

``TimescaleError`` is the base; ``InvalidInputError`` (a value outside its range) carries the
``field``, the ``value`` and what is ``expected``, with ``EmptySpaceError`` and
``SpaceTooLargeError`` beneath it; ``InfeasibleError`` when no configuration passes the
feasibility checks (the message says why). An error raised while reading a file carries the file
as ``source`` (set by ``in_file``, or by ``file_error`` where it is made), and its message starts
with it.

Examples
--------
>>> from timescale_frontier import Architecture
>>> try:
...     Architecture(0, 1, 1)
... except InvalidInputError as e:
...     (e.field, e.value, e.expected)
('d_model', '0', 'an integer in [1, 16777216]')
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from timescale_frontier._text import printable

__all__ = [
    "TimescaleError",
    "InvalidInputError",
    "EmptySpaceError",
    "SpaceTooLargeError",
    "InfeasibleError",
    "in_file",
    "file_error",
    "invalid_value",
    "not_one_dimensional",
    "masked_entries",
]


class TimescaleError(Exception):
    """Base class of every error timescale-frontier raises."""

    def __init__(
        self, message: str, *, field: str | None = None, value: str | None = None, expected: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        #: The offending field (``chip.hbm_bytes``, ``row 3: d_model``, ...), when one is to blame.
        self.field = field
        self.value = value
        self.expected = expected
        #: The file the value came from, when it came from one.
        self.source: str | None = None
        #: The row of that file (a measurement, a run), when the value came from one.
        self.row: int | None = None

    def __str__(self) -> str:
        where = "".join(
            (f"{self.source}: " if self.source else "", f"row {self.row}: " if self.row is not None else "")
        )
        # One line, and nothing a terminal acts on, whatever the file or argument held (a key, a value).
        return printable(where + self.message, one_line=True)


class InvalidInputError(TimescaleError):
    """A value outside its accepted range (names the field and the range)."""


class EmptySpaceError(InvalidInputError):
    """A search-space axis has no values."""


class SpaceTooLargeError(InvalidInputError):
    """A search space larger than the search agrees to enumerate."""


class InfeasibleError(TimescaleError):
    """No configuration passes the feasibility checks; the message says why."""


@contextmanager
def in_file(path: str | os.PathLike[str], row: int | None = None) -> Iterator[None]:
    """Errors raised inside name ``path`` (and ``row``) as their source (the innermost wins)."""
    try:
        yield
    except TimescaleError as e:
        if e.source is None:
            e.source = os.fspath(path)
            if e.row is None:
                e.row = row
        raise


def file_error(
    path: str | os.PathLike[str],
    message: str,
    *,
    row: int | None = None,
    field: str | None = None,
    value: str | None = None,
    expected: str | None = None,
) -> InvalidInputError:
    """An ``InvalidInputError`` about what ``path`` (and its ``row``) holds: its message then starts
    with them, as one that ``in_file`` named."""
    e = InvalidInputError(message, field=field, value=value, expected=expected)
    e.source, e.row = os.fspath(path), row
    return e


def not_one_dimensional(field: str, shape: tuple[int, ...]) -> InvalidInputError:
    """The error of a column (``evaluate``'s, a law fit's) given with ``shape``, not as one dimension."""
    return InvalidInputError(
        f"{field}: columns must be one-dimensional, got shape {shape}",
        field=field,
        value=str(shape),
        expected="a one-dimensional column",
    )


def _short_repr(value: Any) -> str:
    """``repr(value)``, at most 60 characters (a file may hold a 4,000-digit number or a page of
    text where one value belongs); Python refuses to write an integer of more than 4,300 digits."""
    try:
        text = repr(value)
    except ValueError:
        return f"an integer of about {value.bit_length() * 0.30103:.0f} digits"
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text):,} characters)"


def masked_entries(field: str) -> InvalidInputError:
    """The error of a column (``evaluate``'s, a law fit's) with masked entries: a mask is not data."""
    return InvalidInputError(
        f"{field}: the column has masked entries; fill or drop those rows first",
        field=field,
        value="masked entries",
        expected="a column without masked entries",
    )


def invalid_value(
    field: str, value: Any, expected: str, *, path: str | os.PathLike[str] | None = None, row: int | None = None
) -> InvalidInputError:
    """``field = value is invalid: expected ...`` (``value`` as its ``repr``), with the three set;
    with ``path`` (and ``row``), about what that file holds (see ``file_error``)."""
    message = f"{field} = {_short_repr(value)} is invalid: expected {expected}"
    shown = _short_repr(value)
    if path is None:
        return InvalidInputError(message, field=field, value=shown, expected=expected)
    return file_error(path, message, row=row, field=field, value=shown, expected=expected)
