from timescale_frontier import Architecture, predict


def test_tiny_config_by_hand(tiny, tpu_v4):
    # rust/core/src/memory.rs: static 188 x 16 = 3008; saved per layer 416; per step 96 + 128 + 64.
    assert predict(tiny, tpu_v4, 1).memory_bytes == 3712


def test_fits_is_decided_against_usable_hbm(tpu_v4, llama_7b):
    # 7B parameters x 16 bytes (fp32 params, grads, two Adam moments) = 108 GB > 32 GiB x 0.9.
    assert not predict(llama_7b, tpu_v4, 1).fits_memory
    small = Architecture(512, 8, 8, seq_len=1024, batch_size=8)
    assert predict(small, tpu_v4, 1).fits_memory
