"""timescale-frontier: which transformer to train for a wall-clock budget.

Step time comes from the bytes a training step moves through device memory (MEMCPY, Inbar &
Sernau 2024) and its FLOPs, with a model fitted per chip; the tokens a budget buys feed a
Chinchilla-form law. Every formula, default and range check lives in the Rust core
(``timescale_frontier._core``); this package reads files, converts and wraps.

>>> from timescale_frontier import Budget, Hardware, search
>>> result = search(Hardware.load("tpu_v4"), Budget(hours=12), {"d_model": [1024, 2048]})
>>> result.best.loss > 1.69
True
"""

import os as _os
import signal as _signal
import sys as _sys

if _os.path.basename(_sys.argv[0] if _sys.argv else "") in ("timescale", "timescale-frontier"):
    # Ctrl-C while the command line is still importing (numpy, the core) or parsing its options:
    # exit 130 quietly, as later. Each command puts Python's own handler back when it starts
    # (cli/_common.py, handle_errors).
    def _interrupted_while_starting(_signum: int, _frame: object) -> None:
        _sys.stderr.write("interrupted\n")
        _os._exit(130)

    _signal.signal(_signal.SIGINT, _interrupted_while_starting)

from timescale_frontier._core import (  # noqa: E402
    Candidate,
    Candidates,
    Prediction,
    ResolvedBudget,
    ShardedStep,
    __version__,
)
from timescale_frontier.architecture import Architecture  # noqa: E402
from timescale_frontier.budget import Budget  # noqa: E402
from timescale_frontier.errors import (  # noqa: E402
    EmptySpaceError,
    InfeasibleError,
    InvalidInputError,
    SpaceTooLargeError,
    TimescaleError,
)
from timescale_frontier.frontier import SearchResult, search  # noqa: E402
from timescale_frontier.hardware import Hardware  # noqa: E402
from timescale_frontier.loss import (  # noqa: E402
    Law,
    LawFit,
    ShapeFit,
    fit_law,
    fit_law_with_shape,
    get_law,
    law_names,
)
from timescale_frontier.metrics import Evaluation, evaluate  # noqa: E402
from timescale_frontier.prediction import predict  # noqa: E402
from timescale_frontier.space import SearchSpace, load_space, make_space, parse_axis  # noqa: E402

__all__ = [
    "__version__",
    "Architecture",
    "Budget",
    "ResolvedBudget",
    "Hardware",
    "Law",
    "LawFit",
    "ShapeFit",
    "fit_law",
    "fit_law_with_shape",
    "get_law",
    "law_names",
    "Prediction",
    "ShardedStep",
    "predict",
    "Evaluation",
    "evaluate",
    "Candidate",
    "Candidates",
    "SearchResult",
    "search",
    "SearchSpace",
    "make_space",
    "load_space",
    "parse_axis",
    "TimescaleError",
    "InvalidInputError",
    "EmptySpaceError",
    "SpaceTooLargeError",
    "InfeasibleError",
]
