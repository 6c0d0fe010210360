"""The reference transformer in JAX: one training step of exactly the architecture the Rust core
costs (``rust/core/src/architecture.rs``): token embedding, ``n_layers`` pre-norm blocks (RMSNorm,
grouped-query attention with rotary positions, residual, RMSNorm, GELU or SwiGLU MLP, residual),
a final RMSNorm, an output projection (tied or not), fp32 softmax cross-entropy, and AdamW.
Layers run under ``lax.scan`` (flat compile time) or unrolled (for XLA's cost analysis, which
counts a loop body once)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from timescale_frontier.architecture import Architecture

Params = dict[str, Any]

_DTYPES = {2.0: jnp.bfloat16, 4.0: jnp.float32}


def dtype_for(nbytes: float) -> Any:
    """JAX dtype for a bytes-per-element figure (2: bfloat16, 4: float32)."""
    if nbytes not in _DTYPES:
        raise ValueError(f"the JAX reference model supports 2- and 4-byte precisions, not {nbytes}")
    return _DTYPES[nbytes]


def init_params(arch: Architecture, seed: int = 0) -> Params:
    """Parameters in ``param_bytes`` precision; shapes match the core's parameter count. Drawn
    with NumPy: eager JAX random ops would compile one program per shape, which costs seconds."""
    d, L = arch.d_model, arch.n_layers
    q, kv = arch.n_heads * arch.head_dim, arch.n_kv_heads * arch.head_dim
    f = arch.d_ff
    f_in = 2 * f if arch.mlp == "swiglu" else f
    pd = dtype_for(arch.param_bytes)
    rng = np.random.default_rng(seed)

    def normal(shape: tuple[int, ...], fan_in: int) -> jax.Array:
        return jnp.asarray(rng.standard_normal(shape, dtype=np.float32) / np.sqrt(fan_in), dtype=pd)

    def ones(shape: tuple[int, ...]) -> jax.Array:
        return jnp.asarray(np.ones(shape, np.float32), dtype=pd)

    params: Params = {
        "embed": normal((arch.vocab_size, d), d),
        "final_norm": ones((d,)),
        "layers": {
            "attn_norm": ones((L, d)),
            "wqkv": normal((L, d, q + 2 * kv), d),
            "wo": normal((L, q, d), q),
            "mlp_norm": ones((L, d)),
            "w_in": normal((L, d, f_in), d),
            "w_out": normal((L, f, d), f),
        },
    }
    if not arch.tied_embeddings:
        params["unembed"] = normal((d, arch.vocab_size), d)
    return params


def count_params(params: Params) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(params)))


def _rmsnorm(x: jax.Array, w: jax.Array) -> jax.Array:
    var = jnp.mean(jnp.square(x.astype(jnp.float32)), axis=-1, keepdims=True)
    return (x * jax.lax.rsqrt(var + 1e-6).astype(x.dtype)) * w.astype(x.dtype)


def _rope(x: jax.Array) -> jax.Array:
    """Rotary position embedding over the last axis; x: (B, S, heads, head_dim)."""
    s, hd = x.shape[1], x.shape[-1]
    half = hd // 2
    if half == 0:
        return x
    # Computed in the program (iota), not embedded as constants: large literals slow XLA's compiler.
    freq = 1.0 / (10000.0 ** (jnp.arange(half, dtype=jnp.float32) / half))
    ang = jnp.arange(s, dtype=jnp.float32)[:, None] * freq[None, :]
    cos = jnp.cos(ang).astype(x.dtype)[None, :, None, :]
    sin = jnp.sin(ang).astype(x.dtype)[None, :, None, :]
    x1, x2 = x[..., :half], x[..., half : 2 * half]
    rotated = jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)
    return rotated if 2 * half == hd else jnp.concatenate([rotated, x[..., 2 * half :]], axis=-1)


def _attention(arch: Architecture, q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
    """q: (B, S, h, hd); k, v: (B, S, kv, hd). Returns (B, S, h, hd)."""
    if arch.attention == "flash":
        return jax.nn.dot_product_attention(q, k, v, is_causal=True)
    b, s, h, hd = q.shape
    g = h // arch.n_kv_heads
    qg = q.reshape(b, s, arch.n_kv_heads, g, hd)
    scores = jnp.einsum("bqkgd,bskd->bkgqs", qg, k) / np.sqrt(hd)
    mask = jnp.arange(s)[:, None] >= jnp.arange(s)[None, :]
    scores = jnp.where(mask, scores, jnp.asarray(-1e9, scores.dtype))
    probs = jax.nn.softmax(scores.astype(jnp.float32), axis=-1).astype(q.dtype)
    out = jnp.einsum("bkgqs,bskd->bqkgd", probs, v)
    return out.reshape(b, s, h, hd)


def _block(arch: Architecture, act: Any) -> Callable[[jax.Array, Params], tuple[jax.Array, None]]:
    q_dim, kv_dim = arch.n_heads * arch.head_dim, arch.n_kv_heads * arch.head_dim

    def block(x: jax.Array, p: Params) -> tuple[jax.Array, None]:
        b, s, _ = x.shape
        h = _rmsnorm(x, p["attn_norm"])
        qkv = h @ p["wqkv"].astype(act)
        q = _rope(qkv[..., :q_dim].reshape(b, s, arch.n_heads, arch.head_dim))
        k = _rope(qkv[..., q_dim : q_dim + kv_dim].reshape(b, s, arch.n_kv_heads, arch.head_dim))
        v = qkv[..., q_dim + kv_dim :].reshape(b, s, arch.n_kv_heads, arch.head_dim)
        ctx = _attention(arch, q, k, v).reshape(b, s, q_dim)
        x = x + ctx @ p["wo"].astype(act)
        h = _rmsnorm(x, p["mlp_norm"])
        u = h @ p["w_in"].astype(act)
        if arch.mlp == "swiglu":
            gate, up = jnp.split(u, 2, axis=-1)
            a = jax.nn.silu(gate) * up
        else:
            a = jax.nn.gelu(u)
        return x + a @ p["w_out"].astype(act), None

    return block


def loss_fn(
    arch: Architecture, params: Params, tokens: jax.Array, labels: jax.Array, scan_layers: bool = True
) -> jax.Array:
    """Mean next-token cross-entropy (nats/token), logits in fp32."""
    act = dtype_for(arch.activation_bytes)
    x = params["embed"][tokens].astype(act)
    block = _block(arch, act)
    if scan_layers:
        x, _ = jax.lax.scan(block, x, params["layers"])
    else:
        for i in range(arch.n_layers):
            x, _ = block(x, jax.tree_util.tree_map(lambda a, i=i: a[i], params["layers"]))
    x = _rmsnorm(x, params["final_norm"])
    w_out = params["embed"].T if arch.tied_embeddings else params["unembed"]
    logits = (x @ w_out.astype(act)).astype(jnp.float32)
    logp = jax.nn.log_softmax(logits, axis=-1)
    # A one-hot product rather than a gather: its gradient is dense (as the op table's cross-entropy
    # backward writes the full logit gradient), where a gather's is a scatter that CPUs run serially.
    return -jnp.mean(jnp.sum(logp * jax.nn.one_hot(labels, arch.vocab_size, dtype=logp.dtype), axis=-1))


def init_opt_state(arch: Architecture, params: Params) -> Params:
    od = dtype_for(arch.optimizer_bytes)

    def zeros(p: jax.Array) -> jax.Array:
        return jnp.asarray(np.zeros(p.shape, np.float32), dtype=od)

    return {
        "m": jax.tree_util.tree_map(zeros, params),
        "v": jax.tree_util.tree_map(zeros, params),
        "t": jnp.asarray(np.int32(0)),
    }


def make_train_step(
    arch: Architecture,
    scan_layers: bool = True,
    lr: float | Callable[[jax.Array], jax.Array] = 1e-3,
    weight_decay: float = 0.1,
    b1: float = 0.9,
    b2: float = 0.95,
    eps: float = 1e-8,
    lr_argument: bool = False,
) -> Callable[..., Any]:
    """``step(params, opt_state, tokens, labels) -> (params, opt_state, loss)``: forward, backward
    and an AdamW update (decoupled weight decay), not yet jitted. ``lr`` is a constant or a
    schedule: a function of the step number (1-based, int32 array) giving the learning rate. With
    ``lr_argument`` the rate is the step's fifth argument instead (a schedule the caller computes,
    e.g. from the wall clock): ``step(params, opt_state, tokens, labels, rate)``."""

    def step(
        params: Params, opt: Params, tokens: jax.Array, labels: jax.Array, given: jax.Array | None = None
    ) -> tuple[Params, Params, jax.Array]:
        loss, grads = jax.value_and_grad(lambda p: loss_fn(arch, p, tokens, labels, scan_layers))(params)
        t = opt["t"] + 1
        c1 = 1 - b1 ** t.astype(jnp.float32)
        c2 = 1 - b2 ** t.astype(jnp.float32)
        rate: jax.Array | float
        if lr_argument:
            assert given is not None, "lr_argument: the rate is the step's fifth argument"
            rate = given
        else:
            rate = lr(t) if callable(lr) else lr

        def update(p: jax.Array, g: jax.Array, m: jax.Array, v: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            g32 = g.astype(jnp.float32)
            m2 = b1 * m.astype(jnp.float32) + (1 - b1) * g32
            v2 = b2 * v.astype(jnp.float32) + (1 - b2) * g32 * g32
            upd = (m2 / c1) / (jnp.sqrt(v2 / c2) + eps) + weight_decay * p.astype(jnp.float32)
            return (p.astype(jnp.float32) - rate * upd).astype(p.dtype), m2.astype(m.dtype), v2.astype(v.dtype)

        out = jax.tree_util.tree_map(update, params, grads, opt["m"], opt["v"])
        is_triple = lambda x: isinstance(x, tuple)  # noqa: E731
        new_p = jax.tree_util.tree_map(lambda x: x[0], out, is_leaf=is_triple)
        new_m = jax.tree_util.tree_map(lambda x: x[1], out, is_leaf=is_triple)
        new_v = jax.tree_util.tree_map(lambda x: x[2], out, is_leaf=is_triple)
        return new_p, {"m": new_m, "v": new_v, "t": t}, loss

    return step


def batch(arch: Architecture, seed: int = 1) -> tuple[jax.Array, jax.Array]:
    """Random tokens and labels of one step's shape (timing does not depend on their values)."""
    rng = np.random.default_rng(seed)
    shape = (arch.batch_size, arch.seq_len)
    return (
        jnp.asarray(rng.integers(0, arch.vocab_size, shape, dtype=np.int32)),
        jnp.asarray(rng.integers(0, arch.vocab_size, shape, dtype=np.int32)),
    )
