"""Writes a ``[calibration]`` section into a hardware file, atomically: the new text is checked by
the hardware loader before it replaces the file, so a failed or interrupted calibration leaves the
previous file intact."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from timescale_frontier._files import write_atomic
from timescale_frontier.hardware import Hardware, _parse

_MARKER = "# Measured by `timescale calibrate`; the step-time model below replaces the datasheet roofline."
_HEADER = re.compile(r"^\s*\[+\s*([A-Za-z0-9_.\"-]+)\s*\]+\s*(#.*)?$")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def without_calibration(text: str) -> str:
    """The file's text with any ``[calibration]`` and ``[calibration.*]`` tables removed."""
    out, skipping = [], False
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            skipping = m.group(1) == "calibration" or m.group(1).startswith("calibration.")
        if not skipping:
            out.append(line)
    # The marker comment render_section writes above the section goes with it.
    while out and (not out[-1].strip() or out[-1].strip() == _MARKER):
        out.pop()
    return "\n".join(out) + "\n"


def render_section(section: dict[str, Any], alternatives: dict[str, dict[str, Any]]) -> str:
    lines = [
        "",
        _MARKER,
        "[calibration]",
    ]
    lines += [f"{k} = {_toml_value(v)}" for k, v in section.items()]
    for name, coeffs in alternatives.items():
        lines += ["", f"[calibration.alternatives.{name}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in coeffs.items()]
    return "\n".join(lines) + "\n"


def write_calibration(
    source: Path, out: Path, section: dict[str, Any], alternatives: dict[str, dict[str, Any]]
) -> Hardware:
    """Writes ``source`` + the calibration to ``out`` (may equal ``source``) atomically and returns
    the reloaded hardware. Raises ``InvalidInputError`` (and writes nothing) if the result would
    not load."""
    text = without_calibration(source.read_text(encoding="utf-8"))
    text, n = re.subn(r"(?m)^calibrated\s*=\s*(true|false)\s*$", "calibrated = true", text)
    if n == 0:
        text = "calibrated = true\n" + text
    text += render_section(section, alternatives)
    check = out.with_name(f".{out.name}.check.toml")
    try:
        check.write_text(text, encoding="utf-8")
        _parse(check)  # raises on anything the loader would refuse
    finally:
        check.unlink(missing_ok=True)
    write_atomic(out, text)
    return Hardware.load(out)
