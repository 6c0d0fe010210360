import pytest

from timescale_frontier import Architecture, predict


def test_uncalibrated_roofline_sum_by_hand(tpu_v4, llama_7b):
    # LLaMA-7B (batch 1): FLOPs / (0.79 x 2.75e14 FLOP/s) + MEMCPY / (0.875 x 1.2e12 B/s), with the
    # core's counts; the rates are the file's, multiplied by hand.
    f, m = llama_7b.flops_per_step(), llama_7b.memcpy_bytes_per_step()
    assert tpu_v4.step_time_for(llama_7b) == pytest.approx(f / (0.79 * 2.75e14) + m / (0.875 * 1.2e12), rel=1e-12)
    parts = tpu_v4.step_time_parts(llama_7b)
    assert parts.compute_s == pytest.approx(f / 2.1725e14) and parts.memory_s == pytest.approx(m / 1.05e12)
    assert not tpu_v4.calibrated and tpu_v4.step_time_model == "roofline_sum"


def test_tokens_are_whole_steps(tpu_v4):
    a = Architecture(1024, 12, 16, seq_len=1024, batch_size=16)
    p = predict(a, tpu_v4, 2)
    assert p.steps == int(7200 / p.step_time_s)
    assert p.tokens == p.steps * 16 * 1024


def test_budget_shorter_than_a_step_has_no_loss(tpu_v4, llama_7b):
    p = predict(llama_7b, tpu_v4, 1e-6)
    assert p.tokens == 0 and p.loss is None
