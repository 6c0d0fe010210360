import pytest

from timescale_frontier import Architecture, predict


def test_uncalibrated_roofline_sum_by_hand(tpu_v4, llama_7b):
    # LLaMA-7B (batch 1): matmul FLOPs / (0.78 x 2.75e14 FLOP/s) + attention FLOPs / (0.27 x
    # 2.75e14) + MEMCPY / (0.56 x 1.2e12 B/s) + 0.039 s, with the core's counts; the rates are the
    # file's, multiplied by hand: 2.145e14, 7.425e13 FLOP/s and 6.72e11 B/s.
    w = llama_7b.step_work()
    expected = w.matmul_flops / 2.145e14 + w.attention_flops / 7.425e13 + w.bytes / 6.72e11 + 0.039
    assert tpu_v4.step_time_for(llama_7b) == pytest.approx(expected, rel=1e-12)
    parts = tpu_v4.step_time_parts(llama_7b)
    assert parts.compute_s == pytest.approx(w.matmul_flops / 2.145e14 + w.attention_flops / 7.425e13)
    assert parts.memory_s == pytest.approx(w.bytes / 6.72e11) and parts.fixed_s == 0.039
    assert not tpu_v4.calibrated and tpu_v4.step_time_model == "roofline_sum"
    # The step prices executed FLOPs: LLaMA-7B's Chinchilla count includes the embedding as a
    # 2 S V d matmul (x 3 for training), which the lookup, a gather, does not execute.
    assert w.matmul_flops < llama_7b.flops_per_step()


def test_tokens_are_whole_steps(tpu_v4):
    a = Architecture(1024, 12, 16, seq_len=1024, batch_size=16)
    p = predict(a, tpu_v4, 2)
    assert p.steps == int(7200 / p.step_time_s)
    assert p.tokens == p.steps * 16 * 1024


def test_budget_shorter_than_a_step_has_no_loss(tpu_v4, llama_7b):
    p = predict(llama_7b, tpu_v4, 1e-6)
    assert p.tokens == 0 and p.loss is None
