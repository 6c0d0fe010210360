from timescale_frontier import Architecture, predict


def test_tiny_config_by_hand(tiny, tpu_v4):
    # rust/core/src/memory.rs: static 188 x 16 = 3008; saved per layer 416; per step 96 + fp32
    # logits 128 (their gradient is written in place).
    assert predict(tiny, tpu_v4, 1).memory_bytes == 3648


def test_published_runs_fit_and_recomputed_ones_would_not_without_it():
    """Issue 11: every published run that trained without recomputation, at its micro-batch, is
    judged to fit (no false "does not fit"); every run that needed full recomputation is judged not
    to fit without it (a clearly oversized configuration still does not)."""
    from pathlib import Path

    from timescale_frontier import Hardware
    from timescale_frontier.calibrate import fit
    from timescale_frontier.calibrate.records import load_measurements

    data = Path(__file__).resolve().parents[2] / "data" / "published" / "llm-foundry-throughput.csv"
    for name in ("a100_40gb", "a100_80gb", "h100_sxm"):
        hw = Hardware.load(name)
        rows = load_measurements(data, hardware=hw)
        for m in rows:
            assert fit.step_of(m, hw.core).memory_bytes <= hw.usable_hbm_bytes, (name, m.row)
            if m.arch.recompute == "full":
                plain = Architecture(**(m.arch.to_dict() | {"recompute": "none"}))
                step = fit.step_of(fit.Measured(plain, m.step_time_s, m.chips, m.fsdp), hw.core)
                assert step.memory_bytes > hw.usable_hbm_bytes, (name, m.row)


def test_fits_is_decided_against_usable_hbm(tpu_v4, llama_7b):
    # 7B parameters x 16 bytes (fp32 params, grads, two Adam moments) = 108 GB > 32 GiB x 0.9.
    assert not predict(llama_7b, tpu_v4, 1).fits_memory
    small = Architecture(512, 8, 8, seq_len=1024, batch_size=8)
    assert predict(small, tpu_v4, 1).fits_memory
