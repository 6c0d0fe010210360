"""Collection without the optional extras: the modules that import JAX are collected for their
doctests only when JAX is installed (the ``[calibrate]`` extra); tests that need JAX or
matplotlib skip with a reason."""

import importlib.util

collect_ignore = []
if importlib.util.find_spec("jax") is None:
    collect_ignore += [
        f"python/timescale_frontier/calibrate/{m}.py" for m in ("run", "bench", "model", "collectives", "train")
    ]
