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
