import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from timescale_frontier import Architecture, Hardware, InvalidInputError, evaluate, predict

METRICS = ("params", "non_embedding_params", "flops_per_step", "memcpy_bytes_per_step", "memory_bytes")
METRICS += ("fits_memory", "step_time_s", "steps", "tokens", "effective_tokens")


def test_columns_match_predict_row_by_row(tpu_v4):
    d_model = np.array([256, 512, 1024, 2048])
    n_layers = np.array([4, 8, 12, 24])
    out = evaluate(
        tpu_v4,
        6.0,
        d_model=d_model,
        n_layers=n_layers,
        n_heads=d_model // 64,
        mlp=np.array(["gelu", "swiglu", "gelu", "swiglu"]),
        seq_len=1024,
        batch_size=16,
    )
    for i in range(4):
        a = Architecture(
            int(d_model[i]),
            int(n_layers[i]),
            int(d_model[i] // 64),
            mlp=["gelu", "swiglu"][i % 2],
            seq_len=1024,
            batch_size=16,
        )
        p = predict(a, tpu_v4, 6.0)
        for k in (*METRICS, "loss"):
            assert getattr(out, k)[i] == getattr(p, k), k
    assert out.loss.dtype == np.float64 and out.fits_memory.dtype == bool and len(out) == 4


# Every field an Architecture may leave out, with values to give it instead.
OPTIONAL = {
    "n_kv_heads": st.sampled_from([1, 2]),
    "head_dim": st.sampled_from([32, 64]),
    "d_ff": st.integers(1, 4096),
    "mlp": st.sampled_from(["gelu", "swiglu"]),
    "attention": st.sampled_from(["flash", "materialized"]),
    "tied_embeddings": st.booleans(),
    "seq_len": st.sampled_from([64, 512]),
    "batch_size": st.integers(1, 64),
    "vocab_size": st.integers(2, 50_000),
    "param_bytes": st.sampled_from([2.0, 4.0]),
    "activation_bytes": st.sampled_from([2.0, 4.0]),
    "optimizer_bytes": st.sampled_from([2.0, 4.0]),
}


@settings(max_examples=150, deadline=None)
@given(
    d_model=st.sampled_from([128, 256, 768]),
    n_layers=st.integers(1, 24),
    given_fields=st.fixed_dictionaries({}, optional=OPTIONAL),
)
def test_evaluate_and_predict_agree_whatever_is_left_out(d_model, n_layers, given_fields):
    """The issue's LLaMA-7B bug: both entry points take every default from the core's one
    constructor, so any combination of omitted fields gives the same metrics."""
    hw = Hardware.load("h100_sxm")
    kw = {"n_heads": 4, **given_fields}
    p = predict(Architecture(d_model, n_layers, **kw), hw, 3.0)
    cols = evaluate(hw, 3.0, d_model=np.array([d_model]), n_layers=np.array([n_layers]), **kw)
    for k in METRICS:
        assert getattr(cols, k)[0] == getattr(p, k), k
    assert (cols.loss[0] if not np.ma.is_masked(cols.loss[0]) else None) == p.loss


def test_mixture_of_experts_columns_match_predict(h100):
    # A dense row (experts 0) and two mixtures (top-2 of 8; top-1 of 4 with a shared expert).
    experts, top_k, shared = np.array([0, 8, 4]), np.array([0, 2, 1]), np.array([0, 0, 1])
    out = evaluate(h100, 3.0, d_model=512, n_layers=4, n_heads=8, experts=experts, top_k=top_k, shared_experts=shared)
    for i in range(3):
        kw = dict(experts=int(experts[i]), top_k=int(top_k[i]), shared_experts=int(shared[i]))
        p = predict(Architecture(512, 4, 8, **kw), h100, 3.0)
        for k in (*METRICS, "loss"):
            assert getattr(out, k)[i] == getattr(p, k), k
    # GELU experts of 2048 (4 d): the top-2-of-8 row holds 7 more experts and a 512 x 8 router per layer.
    assert out.params[1] - out.params[0] == 4 * (7 * 2 * 512 * 2048 + 512 * 8)
    with pytest.raises(InvalidInputError, match=r"row 0: top_k = 9 is invalid: expected 0 when experts = 0"):
        evaluate(h100, 3.0, d_model=512, n_layers=4, n_heads=8, experts=experts, top_k=9)
    with pytest.raises(InvalidInputError, match=r"row 2: top_k = 5 is invalid: expected routed experts per token"):
        evaluate(h100, 3.0, d_model=512, n_layers=4, n_heads=8, experts=experts, top_k=np.array([0, 2, 5]))


def test_llama_7b_defaults_in_columns():
    # SwiGLU's default d_ff (11008) in both entry points: 6,738,415,616 parameters.
    out = evaluate(Hardware.load("h100_sxm"), 1, d_model=4096, n_layers=32, n_heads=32, mlp="swiglu")
    assert out.params[0] == 6_738_415_616


def test_bad_rows_are_named(tpu_v4):
    with pytest.raises(InvalidInputError, match="row 1: d_model = 0"):
        evaluate(tpu_v4, 1.0, d_model=np.array([64, 0]), n_layers=2, n_heads=1, head_dim=64)
    with pytest.raises(InvalidInputError, match="mlp"):
        evaluate(tpu_v4, 1.0, d_model=64, n_layers=2, n_heads=1, mlp="relu")
    with pytest.raises(InvalidInputError, match="n_layers = 3 rows is invalid: expected 2 rows"):
        evaluate(tpu_v4, 1.0, d_model=np.array([64, 128]), n_layers=np.array([1, 2, 3]), n_heads=1)
    with pytest.raises(InvalidInputError, match="hours = nan"):
        evaluate(tpu_v4, float("nan"), d_model=64, n_layers=2, n_heads=1)
    with pytest.raises(InvalidInputError, match="expected an integer array"):
        evaluate(tpu_v4, 1.0, d_model=np.array([64.5]), n_layers=2, n_heads=1)
    with pytest.raises(InvalidInputError, match="not an architecture field"):
        evaluate(tpu_v4, 1.0, d_model=64, n_layers=2, n_heads=1, heads=3)
    # A categorical as (names, codes): a code outside the names names its row, however many rows.
    codes = np.zeros(300_000, dtype=np.int64)
    codes[123_456] = 2
    with pytest.raises(InvalidInputError, match=r"^row 123456: attention = code 2 is invalid: expected a code below 2"):
        evaluate(tpu_v4, 1.0, d_model=64, n_layers=2, n_heads=1, attention=(["flash", "materialized"], codes))
    codes[123_456] = -1
    with pytest.raises(InvalidInputError, match="row 123456: attention = code -1"):
        evaluate(tpu_v4, 1.0, d_model=64, n_layers=2, n_heads=1, attention=(["flash", "materialized"], codes))
    # Rows are checked in order: row 0's width is reported before row 123456's code.
    with pytest.raises(InvalidInputError, match="^row 0: d_model = 0"):
        evaluate(
            tpu_v4,
            1.0,
            d_model=np.array([0] + [64] * (len(codes) - 1)),
            n_layers=2,
            n_heads=1,
            head_dim=64,
            attention=(["flash", "materialized"], codes),
        )
    codes[123_456] = 1
    out = evaluate(tpu_v4, 1.0, d_model=64, n_layers=2, n_heads=1, attention=(["flash", "materialized"], codes))
    assert out.memory_bytes[123_456] > out.memory_bytes[0]  # materialized keeps the S^2 probabilities


def test_columns_that_would_be_misread_are_refused_or_read_as_meant():
    hw = Hardware.load("h100_sxm")
    base = {"n_layers": 8, "n_heads": 8}

    def error(**kw):
        with pytest.raises(InvalidInputError) as e:
            evaluate(hw, 12, **base, **kw)
        return str(e.value)

    # Codes must be integers (1.9 was truncated to 1, "1" parsed), one-dimensional.
    assert error(d_model=1024, mlp=(["gelu", "swiglu"], np.array([1.9, 0.2]))).startswith(
        "mlp: codes must be a one-dimensional integer array, got shape (2,) dtype float64"
    )
    assert "dtype <U1" in error(d_model=1024, mlp=(["gelu", "swiglu"], np.array(["1"])))
    assert "got shape (1, 2)" in error(d_model=1024, mlp=(["gelu", "swiglu"], np.array([[0, 1]])))
    assert "needs a list of names" in error(d_model=1024, mlp=("gelu", np.array([0, 1])))
    # Masked entries would be computed from their hidden values: refused.
    masked = np.ma.masked_array([1024, 2048], [False, True])
    assert error(d_model=masked) == "d_model: the column has masked entries; fill or drop those rows first"
    # uint64 beyond int64 saturates (the core refuses it) instead of wrapping to -1.
    assert error(d_model=np.array([2**64 - 1], dtype=np.uint64)) == (
        "row 0: d_model = 9223372036854775807 is invalid: expected an integer in [1, 16777216]"
    )
    assert error(d_model=[1024, [1, 2]]).startswith("d_model: not a column")
    # A pair of two names is a column of names, not (names, codes).
    m = evaluate(hw, 12, **base, d_model=np.array([1024, 1024]), mlp=("gelu", "swiglu"))
    g = evaluate(hw, 12, **base, d_model=1024, mlp="gelu")
    s = evaluate(hw, 12, **base, d_model=1024, mlp="swiglu")
    assert (m.params[0], m.params[1]) == (g.params[0], s.params[0])
