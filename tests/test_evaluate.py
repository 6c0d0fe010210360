import numpy as np
import pytest

from timescale_frontier import Architecture, InvalidInputError, evaluate, predict


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
            d_ff=4 * int(d_model[i]),
            seq_len=1024,
            batch_size=16,
        )
        p = predict(a, tpu_v4, 6.0)
        for k in ("params", "flops_per_step", "memcpy_bytes_per_step", "memory_bytes", "step_time_s", "tokens", "loss"):
            assert out[k][i] == getattr(p, k), k
    assert out["loss"].dtype == np.float64 and out["fits_memory"].dtype == bool


def test_bad_rows_are_named(tpu_v4):
    with pytest.raises(InvalidInputError, match="row 1: d_model"):
        evaluate(tpu_v4, 1.0, d_model=np.array([64, 0]), n_layers=2, n_heads=1, head_dim=64)
    with pytest.raises(InvalidInputError, match="mlp"):
        evaluate(tpu_v4, 1.0, d_model=64, n_layers=2, n_heads=1, mlp="relu")
    with pytest.raises(InvalidInputError, match="different lengths"):
        evaluate(tpu_v4, 1.0, d_model=np.array([64, 128]), n_layers=np.array([1, 2, 3]), n_heads=1)
    with pytest.raises(InvalidInputError, match="hours"):
        evaluate(tpu_v4, float("nan"), d_model=64, n_layers=2, n_heads=1)
