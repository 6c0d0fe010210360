"""Plain data (dicts, lists, numbers, strings) from the core's typed results, for JSON and CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["as_data", "fields_data"]


def _fields(cls: type) -> list[str]:
    """The getters of a core class (``frozen`` pyclasses expose their fields as
    ``getset_descriptor``s), in alphabetical order: the class's own order is PyO3's hash order,
    different in every process, and JSON a user pipes or diffs must come out the same each run."""
    return sorted(k for k, v in vars(cls).items() if type(v).__name__ == "getset_descriptor" and not k.startswith("_"))


def as_data(obj: Any) -> Any:
    """``obj`` as JSON-ready data: core objects become dicts of their fields (recursively), numpy
    values become Python numbers, paths strings; non-finite floats become ``None``."""
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return as_data(obj.item())
    if isinstance(obj, np.ndarray):
        return [as_data(x) for x in obj.tolist()]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): as_data(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [as_data(x) for x in obj]
    if type(obj).__module__ == "timescale_frontier._core":
        if hasattr(obj, "to_dict"):
            return as_data(obj.to_dict())
        if hasattr(obj, "__len__") and hasattr(obj, "__getitem__"):
            return [as_data(obj[i]) for i in range(len(obj))]
        return {k: as_data(getattr(obj, k)) for k in _fields(type(obj))}
    raise TypeError(f"not plain data: {type(obj).__name__}")


def fields_data(obj: Any) -> dict[str, Any]:
    """A core object's fields as JSON-ready data (what its ``to_dict`` returns where it has one)."""
    return {k: as_data(getattr(obj, k)) for k in _fields(type(obj))}
