"""Small wording helpers shared by the explanations (search) and the renderers."""

from __future__ import annotations

import math

__all__ = ["binary_bytes", "plural"]


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
