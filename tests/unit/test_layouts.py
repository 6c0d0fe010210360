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
    assert lay.to_dict() == {
        "dp": 8,
        "tp": 4,
        "pp": 4,
        "vp": 5,
        "cp": 2,
        "ep": 1,
        "zero": 1,
        "sp": True,
        "matmul": "bf16",
    }
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
        InvalidInputError, match=r"pp = 64 is invalid: expected pp x vp model chunks at most n_layers \+ 2 = 82"
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


def test_fp8_matmuls_use_the_chip_fp8_rate_and_a_chip_without_fp8_refuses():
    h100 = Hardware.load("h100_sxm").core
    # The datasheet: 1,979 dense FP8 TFLOPS against 989.4 bf16 (NVIDIA H100 SXM datasheet).
    assert h100.matmul_time_factor("fp8") == pytest.approx(989.4 / 1978.9, rel=1e-9)
    bf16 = sharded_step(LLAMA_70B, h100, Layout(dp=32, tp=8, sp=True, zero=1))
    fp8 = sharded_step(LLAMA_70B, h100, Layout(dp=32, tp=8, sp=True, zero=1, matmul="fp8"))
    assert fp8.work.matmul_flops == bf16.work.matmul_flops
    assert fp8.compute_s < bf16.compute_s
    a100 = Hardware.load("a100_80gb").core
    with pytest.raises(InvalidInputError, match="matmul = fp8 is invalid: expected a precision this chip has"):
        sharded_step(LLAMA_70B, a100, Layout(dp=32, tp=8, matmul="fp8"))
    with pytest.raises(InvalidInputError, match="matmul = 'fp6' is invalid"):
        Layout(matmul="fp6")


def test_expert_parallel_layout_of_mixtral():
    # Mixtral 8x7B (Jiang et al. 2024): 8 experts, top-2, on 8 H100s with EP 8 and ZeRO-1.
    mixtral = Architecture(
        d_model=4096, n_layers=32, n_heads=32, n_kv_heads=8, head_dim=128, d_ff=14336, mlp="swiglu",
        seq_len=4096, batch_size=48, micro_batch=1, vocab_size=32000, experts=8, top_k=2,
    )  # fmt: skip
    hw = Hardware.load("h100_sxm").core
    ep = sharded_step(mixtral, hw, Layout(dp=8, zero=1, ep=8))  # 48 / 8 = 6 sequences per chip
    plain = sharded_step(mixtral, hw, Layout(dp=8, zero=1))
    assert ep.ep_comm_bytes > 0 and plain.ep_comm_bytes == 0
    assert ep.memory_bytes < plain.memory_bytes / 3  # each chip holds 1 of the 8 experts
    with pytest.raises(InvalidInputError, match="ep = 3 is invalid: expected a divisor of experts = 8"):
        sharded_step(mixtral, hw, Layout(dp=3, zero=1, ep=3))
    with pytest.raises(InvalidInputError, match="ep = 8 is invalid: expected 1 for a dense MLP"):
        sharded_step(LLAMA_70B, hw, Layout(dp=8, ep=8))
