"""A straightforward NumPy implementation of the core's formulas and search: what a user would
otherwise write. Benchmark baseline only (not part of the package); the benchmarks assert that it
and the Rust core give the same numbers on the same inputs.

Same formulas as rust/core/src: params.rs, flops.rs (Chinchilla App. F), memcpy.rs (op table,
summed here in closed form), memory.rs, step_time.rs (the `rates` model), metrics.rs, loss.rs, search.rs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

F = np.float64
AXES = [
    "d_model",
    "head_dim",
    "kv_group",
    "mlp",
    "ffn_mult",
    "attention",
    "tied_embeddings",
    "vocab_size",
    "seq_len",
    "recompute",
    "micro_batch",
    "n_layers",
    "batch_size",
]  # enumeration order, outermost first (as search.rs); recompute and micro_batch single-valued here


def metrics(
    c: dict[str, np.ndarray],
    p: float,
    a: float,
    o: float,
    model: dict[str, float],
    budget_s: float,
    law: tuple[float, float, float, float, float],
) -> dict[str, np.ndarray]:
    """Whole batches (one micro-step), no recomputation; the `rates` step-time model (its
    coefficients in ``model``)."""
    d, L, h, kv_h, hd, f = (
        c[k].astype(F) for k in ("d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "d_ff")
    )
    S, B, V = (c[k].astype(F) for k in ("seq_len", "batch_size", "vocab_size"))
    swiglu = c["mlp"].astype(bool)
    flash = c["attention"].astype(bool)
    tied = c["tied_embeddings"].astype(bool)
    q, kv = h * hd, kv_h * hd
    qkv = q + 2 * kv
    nmat = np.where(swiglu, 3.0, 2.0)
    f_in = (nmat - 1) * f
    T = B * S
    # params
    per_layer = d * qkv + q * d + nmat * d * f + 2 * d
    non_emb = L * per_layer + d
    total = non_emb + np.where(tied, 1.0, 2.0) * V * d
    # FLOPs: 3 x batch x forward per sequence
    fwd = (
        2 * S * V * d
        + L * (2 * S * d * qkv + 4 * S * S * q + 3 * h * S * S + 2 * S * q * d + 2 * S * nmat * d * f)
        + 2 * S * d * V
    )
    flops = 3 * B * fwd
    # MEMCPY: op table rows summed (reads + writes)
    P = B * h * S * S
    lse = B * h * S
    layer_fwd = (
        2 * (a * 4 * T * d + p * d)  # two add+rmsnorm
        + a * T * d
        + p * d * qkv
        + a * T * qkv  # qkv
        + a * T * q
        + p * q * d
        + a * T * d  # out proj
        + a * T * d
        + p * d * f_in
        + a * T * f_in  # mlp in
        + a * T * f_in
        + a * T * f  # activation
        + a * T * f
        + p * f * d
        + a * T * d
    )  # mlp out
    attn_fwd = np.where(
        flash, a * T * qkv + a * T * q + 4 * lse, a * T * (q + kv) + a * P + 2 * a * P + a * (P + T * kv) + a * T * q
    )

    def mm_bwd(x, w_in, w_out):
        return a * (2 * T * w_out + x) + p * w_in * w_out + a * x + p * w_in * w_out

    layer_bwd = (
        mm_bwd(T * f, f, d)
        + a * (T * f_in + T * f)
        + a * T * f_in
        + mm_bwd(T * d, d, f_in)
        + 2 * (a * 3 * T * d + p * d + a * T * d + p * d)
        + mm_bwd(T * q, q, d)
        + mm_bwd(T * d, d, qkv)
    )
    attn_bwd = np.where(
        flash,
        a * (T * qkv + 2 * T * q) + 4 * lse + a * T * qkv,
        a * (2 * T * q + T * kv + P)
        + a * (P + T * kv)
        + 3 * a * P
        + a * (2 * P + T * kv + T * q)
        + a * (T * q + T * kv),
    )
    step_fwd = (
        4 * T
        + p * T * d
        + a * T * d
        + a * 4 * T * d
        + p * d
        + a * T * d
        + p * d * V
        + 4 * T * V
        + 4 * T * V
        + 4 * T
        + 4 * T
    )
    step_bwd = (
        4 * T * V
        + 8 * T
        + a * T * V
        + mm_bwd(T * d, d, V)
        + a * 2 * T * d
        + 2 * p * d
        + a * T * d
        + np.where(tied, a * T * d + 4 * T + 2 * p * T * d, a * T * d + 4 * T + p * V * d)
    )
    adam = total * (3 * p + 4 * o)
    memcpy = L * (layer_fwd + attn_fwd + layer_bwd + attn_bwd) + step_fwd + step_bwd + adam
    # memory (fp32 logits; their gradient written in place)
    saved = a * T * (4 * d + qkv + q + f_in + f) + np.where(flash, 4 * lse, a * P)
    memory = total * (2 * p + 2 * o) + L * saved + a * 3 * T * d + 4 * T * V
    # executed FLOPs: dense matmuls 3 x forward (no embedding matmul: a gather); attention-score
    # matmuls 2 T S q each, materialized 6 per layer, causal flash half of 2 forward + 5 backward
    matmul = 3 * (L * (2 * T * d * qkv + 2 * T * q * d + 2 * T * d * f_in + 2 * T * f * d) + 2 * T * d * V)
    attn_mm = 2 * T * S * q
    attention = L * attn_mm * np.where(flash, 0.5 * 7, 6.0)
    # time, tokens, loss
    step_time = (
        model["s_per_matmul_flop"] * matmul
        + model["s_per_attention_flop"] * attention
        + model["s_per_byte"] * memcpy
        + model["overhead_s"]
    )
    steps = np.floor(budget_s / step_time)
    tokens = steps * T
    E, A, Bl, alpha, beta = law
    with np.errstate(divide="ignore"):
        loss = E + A / total**alpha + Bl / tokens**beta
    return dict(
        params=total,
        non_embedding_params=non_emb,
        flops_per_step=flops,
        memcpy_bytes_per_step=memcpy,
        memory_bytes=memory,
        step_time_s=step_time,
        steps=steps,
        tokens=tokens,
        loss=loss,
    )


def decode(axes: dict[str, list[Any]], index: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Configurations at `index` (enumeration order of search.rs) and a well-formedness mask."""
    digits = {}
    rest = index.copy()
    for name in reversed(AXES):
        n = len(axes[name])
        digits[name] = rest % n
        rest //= n
    col = {name: np.asarray(axes[name])[digits[name]] for name in AXES}
    d, hd, g = col["d_model"], col["head_dim"], col["kv_group"]
    ok = d % hd == 0
    heads = d // hd
    ok &= heads % g == 0
    d_ff = np.round(col["ffn_mult"] * d)
    ok &= d_ff >= 1
    out = dict(
        d_model=d,
        n_layers=col["n_layers"],
        n_heads=heads,
        n_kv_heads=np.maximum(heads // g, 1),
        head_dim=hd,
        d_ff=d_ff,
        mlp=col["mlp"],
        attention=col["attention"],
        tied_embeddings=col["tied_embeddings"],
        seq_len=col["seq_len"],
        batch_size=col["batch_size"],
        vocab_size=col["vocab_size"],
    )
    return out, ok


def pareto(loss: np.ndarray, params: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Positions of the Pareto set (min loss, min params), ties to the lowest index."""
    order = np.lexsort((index, loss, params))
    l_sorted = loss[order]
    prev_min = np.minimum.accumulate(np.concatenate(([np.inf], l_sorted[:-1])))
    return order[l_sorted < prev_min]


def search(
    axes: dict[str, list[Any]],
    size: int,
    usable_hbm: float,
    model: dict[str, float],
    budget_s: float,
    law: tuple[float, ...],
    top_k: int,
    aspect: tuple[float, float],
    chunk: int = 1 << 20,
) -> dict[str, Any]:
    """The search of search.rs in NumPy, chunk by chunk; critical-batch guard."""
    keep_i, keep_l, keep_p = [], [], []
    feasible = 0
    for start in range(0, size, chunk):
        idx = np.arange(start, min(start + chunk, size), dtype=np.int64)
        cols, ok = decode(axes, idx)
        ratio = cols["d_model"] / cols["n_layers"]
        ok &= (ratio >= aspect[0]) & (ratio <= aspect[1])
        m = metrics(cols, 4.0, 2.0, 4.0, model, budget_s, law)
        ok &= m["memory_bytes"] <= usable_hbm
        ok &= m["steps"] >= 1
        tps = cols["batch_size"].astype(F) * cols["seq_len"]
        with np.errstate(invalid="ignore"):
            ok &= m["loss"] <= (2.1e8 / tps) ** 0.21
        feasible += int(ok.sum())
        i, lo, pa = idx[ok], m["loss"][ok], m["params"][ok]
        front = pareto(lo, pa, i)
        top = np.lexsort((i, pa, lo))[:top_k]
        sel = np.union1d(front, top)
        keep_i.append(i[sel]), keep_l.append(lo[sel]), keep_p.append(pa[sel])
    i, lo, pa = np.concatenate(keep_i), np.concatenate(keep_l), np.concatenate(keep_p)
    top = np.lexsort((i, pa, lo))[:top_k]
    front = pareto(lo, pa, i)
    return dict(
        feasible=feasible, top_index=i[top], top_loss=lo[top], pareto_index=np.sort(i[front]), best_index=int(i[top[0]])
    )
