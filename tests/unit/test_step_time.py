import pytest

from timescale_frontier import Architecture, predict


def test_uncalibrated_roofline_sum_by_hand(tiny, tpu_v4, llama_7b):
    # The tiny model (conftest: d 4, 1 layer, 2 heads of 2, 1 KV head, d_ff 8, V 8, 4 tokens), by
    # hand: forward matmuls 2 x 4 tokens x (Q 4x4 + K 4x2 + V 4x2 + O 4x4 + up 4x8 + down 8x4 +
    # logits 4x8 = 144) = 1152 FLOPs, x 3 for training = 3456; attention scores and values 2 x 2
    # (QK^T and AV) x 2 heads x 4 x 4 x 2 = 256, x 3 = 768; MEMCPY 11,264 bytes (test_memcpy.py,
    # op by op). The file's rates multiplied by hand: 0.78 x 2.75e14 = 2.145e14 and 0.27 x 2.75e14 =
    # 7.425e13 FLOP/s, 0.56 x 1.2e12 = 6.72e11 B/s, plus 0.039 s.
    expected = 3456 / 2.145e14 + 768 / 7.425e13 + 11_264 / 6.72e11 + 0.039
    assert tpu_v4.step_time_for(tiny) == pytest.approx(expected, rel=1e-12)
    parts = tpu_v4.step_time_parts(tiny)
    assert parts.compute_s == pytest.approx(3456 / 2.145e14 + 768 / 7.425e13, rel=1e-12)
    assert parts.memory_s == pytest.approx(11_264 / 6.72e11, rel=1e-12) and parts.fixed_s == 0.039
    assert not tpu_v4.calibrated and tpu_v4.step_time_model == "roofline_sum"
    # The step prices executed FLOPs: LLaMA-7B's Chinchilla count includes the embedding as a
    # 2 S V d matmul (x 3 for training), which the lookup, a gather, does not execute.
    assert llama_7b.step_work().matmul_flops < llama_7b.flops_per_step()


def test_tokens_are_whole_steps(tpu_v4):
    a = Architecture(1024, 12, 16, seq_len=1024, batch_size=16)
    p = predict(a, tpu_v4, 2)
    # Whole steps: as many as end inside the 7,200 s, and one more would not; each 16 x 1024 tokens.
    assert p.steps >= 1 and p.steps * p.step_time_s <= 7200 < (p.steps + 1) * p.step_time_s
    assert p.tokens == p.steps * 16 * 1024


def test_budget_shorter_than_a_step_has_no_loss(tpu_v4, llama_7b):
    p = predict(llama_7b, tpu_v4, 1e-6)
    assert p.tokens == 0 and p.loss is None
