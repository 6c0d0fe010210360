"""``Architecture``: one transformer configuration and its batch (the core's struct, one class).

Examples
--------
>>> a = Architecture(d_model=4096, n_layers=32, n_heads=32, d_ff=11008, mlp="swiglu", vocab_size=32000)
>>> a.head_dim, a.n_kv_heads
(128, 32)
>>> Architecture(**a.to_dict()) == a
True
"""

from timescale_frontier._core import Architecture

__all__ = ["Architecture"]
