"""The benchmark workloads, shared by the pytest-benchmark suite and bench/peak_memory.py (the Rust
criterion bench in rust/bench/benches/search.rs builds the same spaces)."""

from __future__ import annotations

from typing import Any

import numpy as np

# Every axis but d_model fixed; 86,016 configurations per width.
BASE_AXES: dict[str, list[Any]] = {
    "head_dim": [64, 128],
    "kv_group": [1, 4],
    "mlp": ["gelu", "swiglu"],
    "ffn_mult": [8 / 3, 4.0],
    "attention": ["flash", "materialized"],
    "tied_embeddings": [False, True],
    "vocab_size": [32000],
    "seq_len": [512, 1024, 2048, 4096],
    # One value each: the NumPy reference implements whole batches without recomputation.
    "recompute": ["none"],
    "micro_batch": [None],
    "n_layers": list(range(2, 97, 2)),
    "batch_size": [8, 16, 32, 64, 128, 256, 512],
    # d_ff = round(ffn_mult x d_model) exactly, as the NumPy reference computes it.
    "d_ff_multiple": 1,
}
WIDTHS = {"1M": 12, "10M": 116, "100M": 1163}  # 1.03e6, 9.98e6, 1.0004e8 configurations
HARDWARE, HOURS = "h100_sxm", 12.0


def space_axes(size: str) -> dict[str, list[Any]]:
    """d_model = 64, 128, ... (n widths): a dense sweep whose wide end mostly does not fit in memory.
    "1G" is the 100M space with 480 depths (1..480) instead of 48: 1.0004e9 configurations."""
    if size == "1G":
        return {**space_axes("100M"), "n_layers": list(range(1, 481))}
    return {"d_model": [64 * i for i in range(1, WIDTHS[size] + 1)], **BASE_AXES}


def dense_axes() -> dict[str, list[Any]]:
    """A 10M space (9,977,856) where about half the configurations pass every check and reach the
    loss: small heads and sequences, b200 memory, guards opened by the caller. The kernel's worst case."""
    return {
        **space_axes("10M"),
        "head_dim": [32, 64],
        "kv_group": [1, 2],
        "seq_len": [128, 256, 512, 1024],
        "batch_size": [1, 2, 4, 8, 16, 32, 64],
    }


def random_columns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """n well-formed random configurations as numpy columns (for `evaluate`)."""
    rng = np.random.default_rng(seed)
    head_dim = rng.choice([32, 64, 128], n)
    n_heads = rng.integers(1, 65, n)
    group = rng.choice([1, 2, 4], n)
    n_heads = n_heads * group
    return {
        "d_model": n_heads * head_dim,
        "n_layers": rng.integers(1, 97, n),
        "n_heads": n_heads,
        "n_kv_heads": n_heads // group,
        "head_dim": head_dim,
        "d_ff": rng.integers(64, 32768, n),
        "mlp": rng.integers(0, 2, n),
        "attention": rng.integers(0, 2, n),
        "tied_embeddings": rng.integers(0, 2, n),
        "seq_len": rng.choice([256, 512, 1024, 2048, 4096, 8192], n),
        "batch_size": rng.integers(1, 513, n),
        "vocab_size": rng.integers(256, 256_000, n),
    }
