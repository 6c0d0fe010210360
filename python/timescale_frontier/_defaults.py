"""The core's defaults (``_core.DEFAULTS``, one definition each in ``rust/core/src/defaults.rs``),
typed for the API and the command line."""

from timescale_frontier._core import DEFAULTS

#: How many of the best configurations a search lists.
TOP_K: int = int(DEFAULTS["top_k"])
#: Bootstrap refits a law fit draws.
N_BOOTSTRAP: int = int(DEFAULTS["n_bootstrap"])
#: The default law's name.
LAW: str = str(DEFAULTS["law"])
#: The aspect-ratio guard of a law without a shape term.
ASPECT_RATIO: tuple[float, float] = (float(DEFAULTS["aspect_ratio"][0]), float(DEFAULTS["aspect_ratio"][1]))
#: ``d_ff`` is rounded to a multiple of this.
D_FF_MULTIPLE: int = int(DEFAULTS["d_ff_multiple"])
#: ``--chips auto`` tries powers of two up to this.
AUTO_MAX_CHIPS: int = int(DEFAULTS["auto_max_chips"])

#: The usual recipe's assumptions (``timescale recipe``): utilization, tokens_per_param,
#: aspect_ratio, head_dim, mlp, ffn_mult, and its model's seq_len, batch_size, vocab_size.
RECIPE: dict[str, float | int | str] = dict(DEFAULTS["recipe"])

#: The aspect-ratio guard in words (``20:200``), for help texts.
ASPECT_RATIO_TEXT = f"{ASPECT_RATIO[0]:g}:{ASPECT_RATIO[1]:g}"
