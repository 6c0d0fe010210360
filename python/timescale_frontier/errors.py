"""The exception tree. Every class is defined once, in the Rust core's bindings, and re-exported here.

``TimescaleError`` is the base; ``InvalidInputError`` (a value outside its range: names the file,
field and accepted range) with ``EmptySpaceError`` and ``SpaceTooLargeError`` beneath it;
``InfeasibleError`` when no configuration passes the feasibility checks (the message says why).
"""

from timescale_frontier._core import (
    EmptySpaceError,
    InfeasibleError,
    InvalidInputError,
    SpaceTooLargeError,
    TimescaleError,
)

__all__ = [
    "TimescaleError",
    "InvalidInputError",
    "EmptySpaceError",
    "SpaceTooLargeError",
    "InfeasibleError",
]
