"""Writes a ``[calibration]`` section into a hardware file: edited with tomlkit (the user's comments,
order and layout are kept; values are written by the library, never by string building), checked
by the hardware loader before anything is written, then written atomically. The shipped files are
never rewritten: a calibration of one goes to the user's hardware directory."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tomlkit

from timescale_frontier._core import MAX_RECORD_BYTES
from timescale_frontier._files import check_output, refuse_inputs, write_atomic
from timescale_frontier.errors import InvalidInputError
from timescale_frontier.hardware import DEFAULT_STACK, SHIPPED_DIR, Hardware, _parse, origin, user_dir

_MARKER = "# Measured by `timescale calibrate`; the step-time model below replaces the datasheet roofline."


def default_out(hw: Hardware) -> Path:
    """Where a calibration of ``hw`` goes unless the user says: for a shipped file, the same name in
    the user's hardware directory (found first by ``--hardware NAME`` from then on); for the
    user's own file, that file."""
    return user_dir() / hw.path.name if origin(hw.path) == "shipped" else hw.path


def _parent_made(out: Path) -> bool:
    """Whether writing ``out`` creates its directory: only the user's hardware directory is made
    (a calibration's default output); any other ``--out`` must name an existing directory."""
    return os.path.realpath(out.parent) == os.path.realpath(user_dir())


def check_targets(hw: Hardware, out: Path, measurements: Path | None = None, appending: bool = False) -> None:
    """Refuses, before any work, a calibration that would destroy a file: ``out`` inside the
    package's shipped files (through a link too: a link in the user's hardware directory to a
    shipped file is followed to it), ``out`` naming the measurements, or the measurements (read,
    or appended to while measuring) naming the hardware file or ``out``; with ``appending`` (a live
    calibration streams its measurements there) a file that is not JSON lines too."""
    refuse_shipped(out)
    check_output(out, parent_made=_parent_made(out))
    if measurements is not None:
        refuse_inputs(out, [measurements])
        refuse_inputs(measurements, [hw.path, out])
        if appending:
            refuse_other_than_jsonl(measurements)


#: Suffixes of files calibrate never appends measurements to: their readers would no longer load them.
_NOT_JSONL_SUFFIXES = (".toml", ".csv")


def refuse_other_than_jsonl(measurements: Path) -> None:
    """Raises ``InvalidInputError`` unless calibrate may append JSON lines to ``measurements``: a
    new file (not named ``.toml`` or ``.csv``), or an existing one that is empty or whose first line
    is a JSON object (an earlier calibration's measurements). Anything else (a hardware file, a CSV
    table, a directory) would be damaged by the first measurement, so it is refused before any work."""
    expected = "a new .jsonl file, or an earlier calibration's measurements (JSON lines)"

    def refused(why: str) -> InvalidInputError:
        return InvalidInputError(
            f"{measurements}: {why}; calibrate appends JSON lines to --measurements: name a new .jsonl file",
            field="measurements",
            value=str(measurements),
            expected=expected,
        )

    if measurements.suffix.lower() in _NOT_JSONL_SUFFIXES:
        raise refused(f"is named as a {measurements.suffix.lower()[1:].upper()} file, not JSON lines")
    try:
        st = measurements.stat()
    except FileNotFoundError:
        return
    except OSError as e:
        raise refused(f"cannot read ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise refused("is a directory")
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return  # a FIFO or device is written as it is; an empty file is a new one
    try:  # the first line that is not blank, up to the longest record a reader accepts
        with measurements.open(encoding="utf-8-sig", errors="replace") as f:
            first = next((line for line in iter(lambda: f.readline(MAX_RECORD_BYTES + 1), "") if line.strip()), "")
    except OSError as e:
        raise refused(f"cannot read ({e.strerror})") from None
    try:
        record = json.loads(first) if first else {}
    except (ValueError, RecursionError):
        record = None
    if not isinstance(record, dict):
        raise refused("is not a measurements file (its first line is not a JSON object)")


def refuse_shipped(out: Path) -> None:
    """Raises ``InvalidInputError`` when writing ``out`` would rewrite a file shipped with the
    package (``out`` is one, or a link to one)."""
    real = Path(os.path.realpath(out))
    shipped = SHIPPED_DIR.resolve()
    if real.parent == shipped or shipped in real.parents:
        via = "" if Path(os.path.abspath(out)) == real else f" (a link to {real})"
        raise InvalidInputError(
            f"{out}: is a file shipped with the package{via}, which calibrate never rewrites; remove the link"
            " or write elsewhere with --out",
            field="out",
            value=str(out),
            expected="a file outside the package's shipped hardware files",
        )


def with_calibration(
    text: str, section: dict[str, Any], alternatives: dict[str, dict[str, Any]], stack: str | None = None
) -> str:
    """``text`` (a hardware file) with ``calibrated = true`` and its ``[calibration]`` section (and
    ``[calibration.alternatives.*]``) replaced by these; with ``stack`` (the section's software
    stack) the file's ``[stacks.STACK]`` instead when its ``[calibration]`` is of another stack."""
    doc = tomlkit.parse(text)
    current = doc.get("calibration")
    if stack is not None and current is not None and current.get("stack", DEFAULT_STACK) != stack:
        stacks = doc.get("stacks")
        if stacks is None:
            stacks = tomlkit.table(is_super_table=True)
            doc["stacks"] = stacks
        table = _table({**section, "stack": stack}, alternatives)
        stacks.pop(stack, None)
        stacks[stack] = table
        return tomlkit.dumps(doc)
    if stack is not None:
        section = {"stack": stack, **section}
    doc.pop("calibration", None)
    doc["calibrated"] = True
    # The marker comment written above a previous section stays with the table before it: drop it.
    body = tomlkit.dumps(doc).rstrip()
    while body.endswith(_MARKER):
        body = body.removesuffix(_MARKER).rstrip()
    doc = tomlkit.parse(body + "\n")
    doc.add(tomlkit.nl())
    doc.add(tomlkit.comment(_MARKER.removeprefix("# ")))
    doc["calibration"] = _table(section, alternatives)
    return tomlkit.dumps(doc)


def _table(section: dict[str, Any], alternatives: dict[str, dict[str, Any]]) -> Any:
    """One calibration as a TOML table, its alternatives as sub-tables."""
    table = tomlkit.table()
    for k, v in section.items():
        table[k] = v
    if alternatives:
        alts = tomlkit.table(is_super_table=True)
        for name, coeffs in alternatives.items():
            alt = tomlkit.table()
            for k, v in coeffs.items():
                alt[k] = v
            alts[name] = alt
        table["alternatives"] = alts
    return table


def write_calibration(
    source: Path,
    out: Path,
    section: dict[str, Any],
    alternatives: dict[str, dict[str, Any]],
    inputs: Sequence[Path] = (),
    stack: str | None = None,
) -> Hardware:
    """Writes ``source`` with the calibration (of software ``stack``, see ``with_calibration``) to
    ``out`` (may equal ``source``) and returns the reloaded hardware, with that calibration in use.
    The new text is checked by the hardware loader first: if it would not load,
    ``InvalidInputError`` is raised and nothing is written. ``inputs`` (the measurements read) are
    never overwritten."""
    text = with_calibration(source.read_text(encoding="utf-8"), section, alternatives, stack)
    _parse(out, text, stack=stack)  # raises on anything the loader would refuse
    refuse_shipped(out)  # checked before the work too; again here, for callers of this function alone
    if _parent_made(out):
        out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, text, inputs)
    return Hardware.load(out, stack=stack)
