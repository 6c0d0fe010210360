import pytest

from timescale_frontier import Architecture, predict


def test_uncalibrated_roofline_sum_by_hand(tpu_v4):
    # 1e15 FLOP / (0.79 x 2.75e14 FLOP/s) + 1e12 B / (0.875 x 1.2e12 B/s) = 4.6030 + 0.9524 s.
    assert tpu_v4.step_time_s(1e15, 1e12) == pytest.approx(5.5554, abs=1e-4)
    assert not tpu_v4.calibrated and tpu_v4.step_time_model == "roofline_sum"


def test_tokens_are_whole_steps(tpu_v4):
    a = Architecture(1024, 12, 16, seq_len=1024, batch_size=16)
    p = predict(a, tpu_v4, hours=2)
    assert p.steps == int(7200 / p.step_time_s)
    assert p.tokens == p.steps * 16 * 1024


def test_budget_shorter_than_a_step_has_no_loss(tpu_v4, llama_7b):
    p = predict(llama_7b, tpu_v4, hours=1e-6)
    assert p.tokens == 0 and p.loss is None
