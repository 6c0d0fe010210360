"""Check the core's communication volumes against what XLA actually compiles: the reference
training step jitted over a mesh of devices with data-parallel (DP) or fully sharded (FSDP)
shardings, and the collectives in the compiled program summed by kind.

On a CPU, run with ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (set before JAX is
imported) to get eight host devices. Each collective's size ``S`` is the bytes of its whole
tensor: the result of an all-reduce or all-gather, the operand of a reduce-scatter. The core's
per-chip link traffic is ``S`` times the ring factor (``2(n-1)/n`` or ``(n-1)/n``); what is checked
here is ``S`` and the kinds of collectives, which is where a cost model can be wrong.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from timescale_frontier.architecture import Architecture
from timescale_frontier.calibrate import model

_DTYPE_BYTES = {"f32": 4, "bf16": 2, "f16": 2, "s32": 4, "u32": 4, "pred": 1, "s8": 1, "u8": 1, "f64": 8, "s64": 8}
_SHAPE = re.compile(r"\b(f32|bf16|f16|s32|u32|pred|s8|u8|f64|s64)\[([0-9,]*)\]")
_OP = re.compile(r"=\s*(.*?)\s(all-reduce|all-gather|reduce-scatter|all-to-all|collective-permute)(-start)?\(")


def _bytes(shapes: str) -> int:
    total = 0
    for dtype, dims in _SHAPE.findall(shapes):
        n = 1
        for d in dims.split(","):
            if d:
                n *= int(d)
        total += n * _DTYPE_BYTES[dtype]
    return total


def hlo_collectives(hlo_text: str) -> dict[str, dict[str, float]]:
    """Per kind of collective in an HLO module's text: how many ops and the bytes of their
    results (for reduce-scatter the operands, i.e. the whole tensor; see the module docs)."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: {"ops": 0, "result_bytes": 0.0, "tensor_bytes": 0.0})
    for line in hlo_text.splitlines():
        m = _OP.search(line)
        if not m:
            continue
        result, kind = m.group(1), m.group(2)
        rb = _bytes(result)
        if m.group(3):  # async start: the result tuple repeats the operands; count the outputs only
            rb = rb // 2 if kind != "reduce-scatter" else rb
        operands = line[m.end() :].split(")", 1)[0]
        entry = out[kind]
        entry["ops"] += 1
        entry["result_bytes"] += rb
        entry["tensor_bytes"] += _bytes(operands) if kind == "reduce-scatter" else rb
    return dict(out)


def _param_spec(x: Any, dp: int, fsdp: bool) -> P:
    """FSDP: shard each parameter's largest dimension divisible by ``dp`` over the data axis."""
    if not fsdp:
        return P()
    dims = [i for i, n in enumerate(x.shape) if n % dp == 0 and n >= dp]
    if not dims:
        return P()
    axis = max(dims, key=lambda i: x.shape[i])
    return P(*[("data" if i == axis else None) for i in range(x.ndim)])


def compiled_collectives(arch: Architecture, dp: int, fsdp: bool) -> dict[str, dict[str, float]]:
    """Compiles one training step of ``arch`` over ``dp`` devices (batch split over them; with
    ``fsdp`` the parameters and optimizer moments too) and returns ``hlo_collectives`` of it."""
    devices = jax.devices()
    if len(devices) < dp:
        raise RuntimeError(
            f"need {dp} devices, JAX has {len(devices)} (set XLA_FLAGS=--xla_force_host_platform_device_count={dp})"
        )
    mesh = Mesh(np.array(devices[:dp]), ("data",))
    params = model.init_params(arch)
    opt = model.init_opt_state(arch, params)
    tokens, labels = model.batch(arch)

    def spec_tree(tree: Any) -> Any:
        return jax.tree_util.tree_map(lambda x: NamedSharding(mesh, _param_spec(x, dp, fsdp)), tree)

    p_sh = spec_tree(params)
    o_sh = {"m": spec_tree(opt["m"]), "v": spec_tree(opt["v"]), "t": NamedSharding(mesh, P())}
    b_sh = NamedSharding(mesh, P("data", None))
    step = jax.jit(
        model.make_train_step(arch, scan_layers=False),
        in_shardings=(p_sh, o_sh, b_sh, b_sh),
        out_shardings=(p_sh, o_sh, NamedSharding(mesh, P())),
    )
    args = (
        jax.device_put(params, p_sh),
        jax.device_put(opt, o_sh),
        jax.device_put(tokens, b_sh),
        jax.device_put(labels, b_sh),
    )
    return hlo_collectives(step.lower(*args).compile().as_text() or "")
