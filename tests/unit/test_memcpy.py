from hypothesis import given, settings
from hypothesis import strategies as st

from timescale_frontier import Architecture, Hardware, predict


def test_tiny_config_by_hand(tiny, tpu_v4):
    # Op by op in rust/core/src/memcpy.rs: forward 2272 + backward 3728 + AdamW 5264 bytes.
    p = predict(tiny, tpu_v4, 1)
    assert p.memcpy_bytes_per_step == 11_264
    rows = {r.name: (r.read_bytes, r.write_bytes) for r in tiny.op_table()}
    assert rows["softmax"] == (64, 64)  # 1 x 2 heads x 4 x 4 scores, bf16, read and written
    assert rows["adamw update"] == (188 * 16, 188 * 12)


def test_flash_attention_removes_the_seq_squared_traffic(tpu_v4):
    kw = dict(d_model=512, n_layers=4, n_heads=8, seq_len=8192, batch_size=1)
    mat = predict(Architecture(**kw, attention="materialized"), tpu_v4, 1)
    flash = predict(Architecture(**kw, attention="flash"), tpu_v4, 1)
    # Materialized: per layer the score tensor (8 heads x 8192^2 bf16 = 1 GiB) is written 3 times and
    # read 6 times (forward: scores, softmax, probs@v; backward: probs@v, softmax, scores).
    per_layer = 8 * 8192**2 * 2
    assert mat.memcpy_bytes_per_step - flash.memcpy_bytes_per_step > 4 * 9 * per_layer * 0.95
    assert flash.flops_per_step == mat.flops_per_step


dims = st.fixed_dictionaries(
    {
        "d_model": st.sampled_from([64, 128, 256, 512, 1024]),
        "n_layers": st.integers(1, 64),
        "head_dim": st.sampled_from([16, 32, 64]),
        "mlp": st.sampled_from(["gelu", "swiglu"]),
        "attention": st.sampled_from(["flash", "materialized"]),
        "tied_embeddings": st.booleans(),
        "seq_len": st.sampled_from([16, 128, 1024]),
        "batch_size": st.integers(1, 64),
        "vocab_size": st.integers(2, 100_000),
    }
)


@settings(max_examples=200, deadline=None)
@given(d=dims, extra=st.integers(1, 16))
def test_more_layers_never_reduce_flops_bytes_or_memory(d, extra):
    tpu_v4 = Hardware.load("tpu_v4")
    heads = d["d_model"] // d["head_dim"]
    kw = {k: v for k, v in d.items() if k != "n_layers"}
    a = Architecture(n_layers=d["n_layers"], n_heads=heads, **kw)
    b = Architecture(n_layers=d["n_layers"] + extra, n_heads=heads, **kw)
    pa, pb = predict(a, tpu_v4, 1), predict(b, tpu_v4, 1)
    assert pb.flops_per_step > pa.flops_per_step
    assert pb.memcpy_bytes_per_step > pa.memcpy_bytes_per_step
    assert pb.memory_bytes > pa.memory_bytes
    assert pb.step_time_s >= pa.step_time_s
