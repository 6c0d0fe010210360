import pytest

from timescale_frontier import Architecture, Hardware


@pytest.fixture
def tiny() -> Architecture:
    """d 4, 1 layer, 2 heads of 2, 1 KV head, GELU d_ff 8, materialized, untied, S 4, batch 1, V 8.
    Hand-derived figures for it are in test_memcpy.py and test_memory.py."""
    return Architecture(
        4,
        1,
        2,
        n_kv_heads=1,
        head_dim=2,
        d_ff=8,
        mlp="gelu",
        attention="materialized",
        tied_embeddings=False,
        seq_len=4,
        batch_size=1,
        vocab_size=8,
    )


@pytest.fixture
def llama_7b() -> Architecture:
    return Architecture(4096, 32, 32, d_ff=11008, mlp="swiglu", vocab_size=32000, seq_len=2048, batch_size=1)


@pytest.fixture
def tpu_v4() -> Hardware:
    return Hardware.load("tpu_v4")


@pytest.fixture
def h100() -> Hardware:
    return Hardware.load("h100_sxm")
