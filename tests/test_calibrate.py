"""Calibration without JAX: the fits recover known coefficients, the chosen model meets the
accuracy target on committed real measurements, `calibrate --refit` and `validate` work from saved
measurements (they need no JAX; the live path is tests/test_calibrate_live.py)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from timescale_frontier import Architecture, Hardware
from timescale_frontier.calibrate import fit
from timescale_frontier.calibrate.records import load_measurements

BIN = Path(sys.executable).parent
#: The hardware the synthetic and recorded steps are predicted on (its step-time model is replaced).
BASE = Hardware.load("cpu").core


def _synthetic(model_name, coeffs, n=24, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    archs = [
        Architecture(
            int(rng.choice([64, 128, 256])),
            int(rng.integers(1, 9)),
            4,
            seq_len=int(rng.choice([32, 128, 512])),
            batch_size=int(rng.integers(1, 17)),
            vocab_size=int(rng.choice([256, 4096])),
            activation_bytes=4.0,
            attention="materialized",
        )
        for _ in range(n)
    ]
    t = fit.Fit(model_name, coeffs).predict(archs, BASE) * (1 + noise * rng.standard_normal(n))
    return archs, t


@pytest.mark.parametrize(
    "name, coeffs",
    [
        ("memcpy", {"s_per_memcpy_byte": 2e-10, "s_per_flop": 0.0, "overhead_s": 1e-3}),
        ("linear", {"s_per_memcpy_byte": 1e-10, "s_per_flop": 5e-12, "overhead_s": 5e-4}),
        ("split", {"s_per_fixed_byte": 1e-10, "s_per_token_byte": 5e-10, "s_per_flop": 2e-12, "overhead_s": 0.0}),
    ],
)
def test_fits_recover_known_coefficients(name, coeffs):
    archs, t = _synthetic(name, coeffs)
    reports = fit.fit_all(archs, t, fit.Ceilings(1e11, 4e9), BASE)
    got = reports[name].fit.coeffs
    for k, v in coeffs.items():
        assert got[k] == pytest.approx(v, rel=1e-6, abs=1e-9 if k == "overhead_s" else 1e-20), k
    assert reports[name].heldout_median_abs_pct_error < 1e-6
    assert fit.choose(reports) in (name, "split", "linear")  # nested models fit exact data as well


def test_spearman_by_hand():
    assert fit.spearman(np.array([1.0, 2, 3, 4]), np.array([10.0, 20, 30, 40])) == pytest.approx(1.0)
    assert fit.spearman(np.array([1.0, 2, 3, 4]), np.array([4.0, 3, 2, 1])) == pytest.approx(-1.0)


#: Real measurements, each from one `timescale calibrate` run on the 2-vCPU development machine
#: (the second is stage a of experiments/time_budget, a different design and step-time range).
RECORDED = [
    Path(__file__).parent.parent / "bench" / "calibration" / "cpu-2026-11-27.jsonl",
    Path(__file__).parent.parent / "experiments" / "time_budget" / "results" / "calibration.jsonl",
]


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.parent.name)
def test_recorded_cpu_measurements_meet_the_held_out_target(path):
    """Issue 3's accuracy target, judged on committed real measurements rather than live timings:
    a shared CI machine's timing noise (5-10% between repeats here, 39% model error in one CI run
    under contention) would make any accuracy bound on a fresh run flaky. Every step is predicted
    by a model fitted without it (5-fold cross-validation): the chosen model's median error must be
    at most 15%, and below the paper's MEMCPY-only and the FLOPs-only models'."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    matmul = max(r["flops_per_s"] for r in records if r["kind"] == "matmul")
    copy = max(r["bytes_per_s"] for r in records if r["kind"] == "copy")
    rows = load_measurements(path)
    archs = [Architecture(**{k: v for k, v in r.items() if k != "step_time_s"}) for r in rows]
    t = np.array([r["step_time_s"] for r in rows])
    reports = fit.fit_all(archs, t, fit.Ceilings(matmul, copy), BASE)
    chosen = fit.choose(reports)
    err = {k: r.heldout_median_abs_pct_error for k, r in reports.items()}
    assert chosen == min(reports, key=lambda k: reports[k].heldout_mean_abs_pct_error)
    assert err[chosen] <= 15.0, err
    assert err[chosen] < err["memcpy"] and err[chosen] < err["flops"], err


def test_refit_from_recorded_measurements(tmp_path):
    """`calibrate --refit` fits and writes without measuring; the shipped cpu.toml is this refit of
    the committed measurements (validation split: 7 steps not used in the fit)."""
    out = tmp_path / "cpu.toml"
    p = subprocess.run(
        [str(BIN / "timescale"), "calibrate", "-H", "cpu", "--refit", str(RECORDED[0]), "--out", str(out), "-q"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    hw, shipped = Hardware.load(out), Hardware.load("cpu")
    assert hw.calibration["model"] == shipped.calibration["model"] == "split"
    for k in ("s_per_fixed_byte", "s_per_token_byte", "s_per_flop", "s_per_score_byte"):
        assert hw.calibration[k] == pytest.approx(shipped.calibration[k], rel=1e-12), k
    assert hw.calibration["n_samples"] == 18 and hw.calibration["n_validation"] == 7
    assert hw.calibration["validation_median_abs_pct_error"] <= 15.0
    bad = subprocess.run(
        [str(BIN / "timescale"), "calibrate", "-H", "h100_sxm", "--refit", str(RECORDED[0]), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "pass --force" in bad.stderr and "Traceback" not in bad.stderr
    for text, message in (
        ('{"kind": "matmul"}\n', "matmul flops_per_s = None is invalid"),
        ("not json\n", "line 1: not JSON"),
        ('{"kind": "matmul", "flops_per_s": 1e9}\n{"kind": "copy", "bytes_per_s": 1e9}\n'
         '{"kind": "train_step", "d_model": 64}\n', "train_step record 1 lacks n_layers"),
    ):  # fmt: skip
        f = tmp_path / "bad.jsonl"
        f.write_text(text)
        r = subprocess.run(
            [str(BIN / "timescale"), "calibrate", "-H", "cpu", "--refit", str(f), "--out", str(out)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_refit_tells_devices_apart_by_jax_device_kind():
    from timescale_frontier.calibrate.records import _backend_of

    assert _backend_of("cpu") == "cpu"
    assert _backend_of("TPU v4") == "tpu" and _backend_of("TPU v5 lite") == "tpu"
    assert _backend_of("NVIDIA H100 80GB HBM3") == "gpu"
