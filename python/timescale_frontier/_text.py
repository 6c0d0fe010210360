"""Small wording helpers shared by the explanations (search) and the renderers."""

from __future__ import annotations

import math

__all__ = ["binary_bytes", "plural", "printable"]


def plural(n: int, noun: str) -> str:
    """``n`` with its noun: "1 layer", "2 layers"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def binary_bytes(x: float | None) -> str:
    """``34359738368`` -> ``'32 GiB'``; three significant digits, never an exponent (``1010 MiB``,
    not ``1.01e+03 MiB``)."""
    if x is None or not math.isfinite(x):
        return "-"
    for factor, unit in ((2.0**50, "PiB"), (2.0**40, "TiB"), (2.0**30, "GiB"), (2.0**20, "MiB"), (2.0**10, "KiB")):
        if abs(x) >= factor:
            v = x / factor
            return f"{v:.3g} {unit}" if abs(v) < 1000 else f"{v:.0f} {unit}"
    return f"{x:.0f} B"


def si(x: float | None, unit: str = "", digits: int = 3) -> str:
    """``1.23e9, 'FLOP'`` -> ``'1.23 GFLOP'``."""
    if x is None or not math.isfinite(x):
        return "-"
    for factor, prefix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.{digits}g} {prefix}{unit}".rstrip()
    return f"{x:.{digits}g} {unit}".rstrip()


def count(x: float | None) -> str:
    """Parameter and token counts: ``1.23e9`` -> ``'1.23 B'``."""
    if x is None or not math.isfinite(x):
        return "-"
    for factor, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.3g} {suffix}"
    return f"{x:.3g}"


#: Characters a terminal acts on besides C0/C1 controls and DEL: the Unicode bidirectional
#: overrides and marks (text shown in another order than it reads).
_BIDI = frozenset((*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C))


def _unsafe(ch: str, keep: str) -> bool:
    code = ord(ch)
    # ... and lone surrogates (JSON's "\ud800"), which no terminal encoding can write.
    return ch not in keep and (code < 0x20 or 0x7F <= code < 0xA0 or code in _BIDI or 0xD800 <= code < 0xE000)


def printable(text: str, *, one_line: bool = False) -> str:
    """``text`` safe to print on a terminal: every control character (ESC, BEL, CR, C1 controls,
    DEL) and bidirectional override is written as its escape (``\\x1b``, ``\\u202e``), so text
    read from a file can neither move the cursor, retitle the window nor reorder what is shown.
    Newlines and tabs stay, unless ``one_line`` (an error message stays one line whatever a file
    held). The one helper every printed text goes through (the CLI's output and errors).

    >>> printable("a\\x1b]0;title\\x07b")
    'a\\\\x1b]0;title\\\\x07b'
    """
    keep = "\t" if one_line else "\n\t"
    if not any(_unsafe(ch, keep) for ch in text):
        return text
    return "".join(
        (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}") if _unsafe(ch, keep) else ch for ch in text
    )
