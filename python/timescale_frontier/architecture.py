"""``Architecture``: one transformer configuration and its batch (the core's struct, one class;
omitted fields take the core's defaults).

Examples
--------
>>> a = Architecture(d_model=4096, n_layers=32, n_heads=32, mlp="swiglu", vocab_size=32000)
>>> a.head_dim, a.n_kv_heads, a.d_ff
(128, 32, 11008)
>>> Architecture(**a.to_dict()) == a
True
"""

from timescale_frontier._core import ARCHITECTURE_FIELDS, Architecture

__all__ = ["Architecture", "FIELDS", "FIELD_KINDS", "PRECISION_FIELDS", "SHAPE_FIELDS"]

#: Every field, in the core's order (the keyword arguments that rebuild an Architecture).
FIELDS: tuple[str, ...] = tuple(name for name, _ in ARCHITECTURE_FIELDS)
#: Each field's kind (``int``, ``count``, ``optional int``, ``float``, ``bool``, ``text``).
FIELD_KINDS: dict[str, str] = dict(ARCHITECTURE_FIELDS)
#: Bytes per element of parameters, activations and optimizer moments.
PRECISION_FIELDS: tuple[str, ...] = ("param_bytes", "activation_bytes", "optimizer_bytes")
#: The shape and batch fields (everything but the precisions).
SHAPE_FIELDS: tuple[str, ...] = tuple(f for f in FIELDS if f not in PRECISION_FIELDS)
