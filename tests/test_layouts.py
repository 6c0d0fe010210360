"""Layouts beyond DP/FSDP x TP (issue 24): pipeline, sequence and context parallelism and ZeRO
stages through the binding (the formulas' hand-derived tests are the core's, in sharding.rs)."""

import pytest

from timescale_frontier._core import Architecture, Budget, Law, Layout, predict, sharded_step
from timescale_frontier.errors import InvalidInputError
from timescale_frontier.hardware import Hardware

# LLaMA-2-70B's shape (Touvron et al. 2023) at 4,096 tokens, global batch 512 in micro-batches of 1.
LLAMA_70B = Architecture(
    d_model=8192, n_layers=80, n_heads=64, n_kv_heads=8, head_dim=128, d_ff=28672, mlp="swiglu",
    seq_len=4096, batch_size=512, micro_batch=1, vocab_size=32000,
)  # fmt: skip


def test_layout_fields_and_name():
    lay = Layout(dp=8, tp=4, pp=4, vp=5, cp=2, sp=True, zero=1)
    assert (lay.dp, lay.tp, lay.pp, lay.vp, lay.cp, lay.sp, lay.zero, lay.chips) == (8, 4, 4, 5, 2, True, 1, 256)
    assert lay.name == "ZeRO-1 DP 8 x TP 4 SP x PP 4 (VP 5) x CP 2"
    assert lay.to_dict() == {"dp": 8, "tp": 4, "pp": 4, "vp": 5, "cp": 2, "zero": 1, "sp": True}
    assert Layout(dp=8) == Layout(dp=8) and hash(Layout(dp=8)) == hash(Layout(dp=8))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vp": 2}, "vp = 2 is invalid: expected 1 without pipeline stages"),
        ({"sp": True}, "sp = true is invalid"),
        ({"zero": 4}, "zero = 4 is invalid: expected a ZeRO stage"),
        ({"tp": 0}, "tp = 0 is invalid"),
        ({"pp": 2_000_000}, "pp = 2000000 is invalid"),
    ],
)
def test_bad_layouts_are_one_line_errors(kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        Layout(**kwargs)


def test_a_layout_that_does_not_split_the_model_names_the_degree():
    hw = Hardware.load("h100_sxm").core
    with pytest.raises(InvalidInputError, match="tp = 3 is invalid: expected a divisor of n_kv_heads = 8"):
        sharded_step(LLAMA_70B, hw, Layout(dp=8, tp=3))
    with pytest.raises(
        InvalidInputError, match="pp = 64 is invalid: expected pp x vp model chunks at most n_layers = 80"
    ):
        sharded_step(LLAMA_70B, hw, Layout(pp=64, vp=2))
    with pytest.raises(InvalidInputError, match="cp = 3 is invalid: expected a divisor of seq_len = 4096"):
        sharded_step(LLAMA_70B, hw, Layout(cp=3))


def test_pipeline_step_adds_its_bubble_and_sends():
    hw = Hardware.load("h100_sxm").core
    st = sharded_step(LLAMA_70B, hw, Layout(dp=16, tp=8, pp=2, sp=True, zero=1))
    # 512 / 16 = 32 micro-batches per replica: the 1F1B bubble is (2 - 1) / 32 of the busy time.
    assert st.micro_steps == 32
    assert 0 < st.bubble_s < st.compute_s / 32
    assert st.step_time_s == pytest.approx(
        max(st.compute_s + st.bubble_s, st.dp_comm_s + st.cp_comm_s) + st.tp_comm_s + st.pp_comm_s, rel=1e-12
    )
    assert st.pp_comm_bytes > 0 and st.cp_comm_bytes == 0
    interleaved = sharded_step(LLAMA_70B, hw, Layout(dp=16, tp=8, pp=2, vp=4, sp=True, zero=1))
    assert interleaved.bubble_s == pytest.approx(st.bubble_s / 4, rel=1e-9)
    # Interleaving keeps more micro-batches in flight (1 + (2 - 1) / (2 x 4) = 1.125x the stage's).
    assert interleaved.memory_bytes > st.memory_bytes


def test_predict_with_a_layout_uses_exactly_it():
    hw = Hardware.load("h100_sxm").core
    lay = Layout(dp=16, tp=8, pp=2, sp=True, zero=1)
    p = predict(LLAMA_70B, hw, Budget(hours=24), Law.builtin("besiroglu"), layout=lay)
    assert p.chips == 256 and p.step.layout == lay and p.shardings == []
    assert p.step_time_s == sharded_step(LLAMA_70B, hw, lay).step_time_s
    with pytest.raises(InvalidInputError, match="the layout's 256 chips"):
        predict(LLAMA_70B, hw, Budget(hours=24), Law.builtin("besiroglu"), chips=128, layout=lay)
