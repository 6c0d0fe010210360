"""Calibration without JAX: the fits recover known coefficients, the chosen model meets the
accuracy target on committed real measurements, `calibrate --refit` and `validate` work from saved
measurements (they need no JAX; the live path is tests/calibration/test_calibrate_live.py)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from timescale_frontier import Architecture, Hardware
from timescale_frontier._core import choice_is_stable
from timescale_frontier.calibrate import fit
from timescale_frontier.calibrate.records import load_measurements
from timescale_frontier.hardware import SHIPPED_DIR

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
    rows = [fit.Measured(a, 1.0) for a in archs]
    t = fit.Fit(model_name, coeffs).predict(rows, BASE) * (1 + noise * rng.standard_normal(n))
    return [fit.Measured(a, float(ti)) for a, ti in zip(archs, t, strict=True)]


@pytest.mark.parametrize(
    "name, coeffs",
    [
        ("memcpy", {"s_per_memcpy_byte": 2e-10, "s_per_flop": 0.0, "overhead_s": 1e-3}),
        ("linear", {"s_per_memcpy_byte": 1e-10, "s_per_flop": 5e-12, "overhead_s": 5e-4}),
        ("split", {"s_per_fixed_byte": 1e-10, "s_per_token_byte": 5e-10, "s_per_flop": 2e-12, "overhead_s": 0.0}),
        # (rates no faster than the CPU file's peaks: 1.6e11 FLOP/s, 2e10 B/s; a fit never goes above them)
        ("rates", {"s_per_matmul_flop": 1e-11, "s_per_attention_flop": 4e-11, "s_per_byte": 2e-10, "overhead_s": 1e-3}),
    ],
)
def test_fits_recover_known_coefficients(name, coeffs):
    rows = _synthetic(name, coeffs)
    reports = fit.fit_all(rows, BASE, fit.Ceilings(1e11, 4e9))
    got = reports[name].fit.coeffs
    for k, v in coeffs.items():
        assert got[k] == pytest.approx(v, rel=1e-6, abs=1e-9 if k == "overhead_s" else 1e-20), k
    assert reports[name].heldout_median_abs_pct_error < 1e-6
    assert fit.choose(reports) in (name, "split", "linear", "rates")  # nested models fit exact data as well


def test_spearman_by_hand():
    assert fit.spearman(np.array([1.0, 2, 3, 4]), np.array([10.0, 20, 30, 40])) == pytest.approx(1.0)
    assert fit.spearman(np.array([1.0, 2, 3, 4]), np.array([4.0, 3, 2, 1])) == pytest.approx(-1.0)


#: Real measurements, each from one `timescale calibrate` run on the 2-vCPU development machine
#: (the second is stage a of experiments/time_budget, a different design and step-time range).
RECORDED = [
    Path(__file__).resolve().parents[2] / "bench" / "calibration" / "cpu-2026-11-27.jsonl",
    Path(__file__).resolve().parents[2] / "experiments" / "time_budget" / "results" / "calibration.jsonl",
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
    reports = fit.fit_all(rows, BASE, fit.Ceilings(matmul, copy))
    chosen = fit.choose(reports)
    err = {k: r.heldout_median_abs_pct_error for k, r in reports.items()}
    assert chosen == min(reports, key=lambda k: reports[k].heldout_median_abs_pct_error)
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
    assert hw.calibration["model"] == shipped.calibration["model"] == "rates"
    for k in ("s_per_matmul_flop", "s_per_attention_flop", "s_per_byte", "overhead_s"):
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


PUBLISHED = Path(__file__).resolve().parents[2] / "data" / "published" / "llm-foundry-throughput.csv"


@pytest.mark.parametrize("name", ["a100_40gb", "a100_80gb", "h100_sxm"])
def test_published_training_steps_are_predicted_within_eight_percent(name):
    """Issue 11's target on the provided rows (MosaicML llm-foundry, up to 512 GPUs, with and
    without full recomputation): the `rates` model, 5-fold cross-validated, has a median absolute
    step-time error <= 8% and a rank correlation >= 0.97, per chip; every row is priced."""
    hw = Hardware.load(name)
    rows = load_measurements(PUBLISHED, hardware=hw)
    assert {m.arch.recompute for m in rows} == {"none", "full"} and max(m.chips for m in rows) >= 64
    reports = fit.fit_all(rows, hw.core, models=["rates", "memcpy", "flops"])
    rates = reports["rates"]
    assert rates.heldout_median_abs_pct_error <= 8.0 and rates.heldout_spearman >= 0.97
    # Better than the paper's MEMCPY-only and a FLOPs-only model on the same rows.
    assert rates.heldout_median_abs_pct_error < reports["flops"].heldout_median_abs_pct_error
    assert rates.heldout_median_abs_pct_error < reports["memcpy"].heldout_median_abs_pct_error
    # The shipped file is this fit.
    for k, v in rates.fit.coeffs.items():
        assert hw.calibration[k] == pytest.approx(v, rel=1e-9), k


def _no_jax(tmp_path):
    """An environment in which `import jax` fails."""
    fake = tmp_path / "nojax"
    (fake / "jax").mkdir(parents=True)
    (fake / "jax" / "__init__.py").write_text("raise ImportError('JAX is not installed here')\n")
    import os

    return {**os.environ, "PYTHONPATH": str(fake)}


def test_validate_and_calibrate_from_need_no_jax(tmp_path):
    env = _no_jax(tmp_path)
    check = subprocess.run([sys.executable, "-c", "import jax"], env=env, capture_output=True, text=True)
    assert check.returncode != 0 and "not installed" in check.stderr
    v = subprocess.run(
        [str(BIN / "timescale"), "validate", "-H", "h100_sxm", "--measurements", str(PUBLISHED), "--format", "json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert v.returncode == 0, v.stderr
    doc = json.loads(v.stdout)
    models = doc["models"]
    assert doc["n"] == 52
    # The paper's headline table, side by side: datasheet, MEMCPY-only, FLOPs-only, calibrated.
    assert {"datasheet roofline (uncalibrated)", "memcpy-only (fitted here, 5-fold CV)"} <= set(models)
    # In sample: the shipped file was calibrated on these very rows, so this only says the file's
    # coefficients are the ones fitted to them; the held-out figure is checked below.
    assert models["rates (hardware file default)"]["median_abs_pct_error"] < 8.0
    out = tmp_path / "h100.toml"
    c = subprocess.run(
        [str(BIN / "timescale"), "calibrate", "-H", "h100_sxm", "--from", str(PUBLISHED), "--out", str(out), "--source", "test"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert c.returncode == 0, c.stderr
    hw = Hardware.load(out)
    assert hw.calibration["model"] == "rates" and hw.calibration["source"] == "test"
    assert hw.calibration["n_samples"] == 52 and hw.calibration["chips_measured"] == "8-512"
    # Validation proper: the chosen model's median error on rows left out of each fit (5-fold CV).
    assert hw.calibration["heldout_median_abs_pct_error"] < 8.0


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "no training-step measurements"),
        ("d_model,n_layers\n512,4\n", "row 1: n_heads is missing"),
        (
            "d_model,n_layers,n_heads,step_time_s\n512,4,8,0\n",
            "row 1: step_time_s = 0 is invalid: expected seconds in [1e-06, 86400]",
        ),
        ("d_model,n_layers,n_heads,step_time_s\n512,4,8,-1.5\n", "row 1: step_time_s = -1.5 is invalid"),
        (
            "d_model,n_layers,n_heads,step_time_s\n512,4,8,1\n512,four,8,1\n",
            "row 2: n_layers = 'four' is invalid: expected a number",
        ),
        (
            "d_model,n_layers,n_heads\n512,4,8\n",
            "row 1: step_time_s = missing is invalid: expected step_time_s or tokens_per_s_per_chip",
        ),
        ("d_model,n_layers,n_heads,step_time_s,chips\n512,4,8,1,0\n", "row 1: chips"),
        (
            "d_model,n_layers,n_heads,step_time_s,sharding\n512,4,8,1,zero-bubble\n",
            "row 1: sharding = 'zero-bubble' is invalid",
        ),
        (
            "d_model,n_layers,n_heads,step_time_s\n0,4,8,1\n",
            "row 1: d_model = 0 is invalid: expected an integer in [1, 16777216]",
        ),
    ],
)
def test_bad_measurement_files_are_refused_with_the_row_and_field(tmp_path, content, message):
    f = tmp_path / "m.csv"
    f.write_text(content)
    out = tmp_path / "out.toml"
    for args in (
        ["validate", "-H", "h100_sxm", "--measurements", str(f)],
        ["calibrate", "-H", "h100_sxm", "--from", str(f), "--out", str(out)],
    ):
        r = subprocess.run([str(BIN / "timescale"), *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stderr
        assert message in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert str(f) in r.stderr
    assert not out.exists()


def _report(heldout_pct: list[float]) -> fit.Report:
    """A model whose held-out predictions of steps of 1 s err by ``heldout_pct`` percent."""
    cv = 1.0 + np.array(heldout_pct) / 100.0
    return fit.Report(None, 0, 0, 0, 0, 0, float(np.median(heldout_pct)), 0, 0, len(cv), cv)  # type: ignore[arg-type]


def test_the_model_choice_is_judged_on_bootstrap_resamples_of_the_steps():
    """Issue 26.7, by hand on 10 steps of 1 s. A model better on every step wins every resample.
    Models a (5% on five steps, 40% on five) and b (the other way round) have medians of 22.5%, c
    21% everywhere: c is chosen, but a resample takes at least six of a's 5% steps (a's median 5%)
    with probability P(Bin(10, 1/2) >= 6) = 0.377, b's the same, and c wins only on an even split,
    0.246: about 49 of 200 resamples, an unstable choice."""
    t = np.ones(10)
    steady = fit.choice_resamples({"x": _report([10.0] * 10), "y": _report([20.0] * 10)}, t)
    assert steady == {"x": fit.CHOICE_RESAMPLES, "y": 0} and fit.CHOICE_RESAMPLES == 200
    reports = {"a": _report([5.0] * 5 + [40.0] * 5), "b": _report([40.0] * 5 + [5.0] * 5), "c": _report([21.0] * 10)}
    assert fit.choose(reports) == "c"
    wins = fit.choice_resamples(reports, t)
    assert 25 <= wins["c"] <= 75 and sum(wins.values()) == 200  # 49 +- 4 standard deviations
    assert not choice_is_stable(wins["c"], 200)


def test_a_fit_far_worse_than_its_hardware_file_is_refused_unless_forced(tmp_path):
    """Issue 26.7: an interrupted or noisy calibration wrote a fit erring 127% with exit 0. The
    recorded CPU steps with their times scrambled (alternately x 0.6 and x 4: no model can follow
    them) fit far worse than the CPU file's own calibration (18.8% cross-validated): refused, with
    exit 2 and nothing written, unless --force, which writes it and says so loudly."""
    noisy = tmp_path / "noisy.jsonl"
    lines, k = [], 0
    for line in RECORDED[0].read_text().splitlines():
        rec = json.loads(line)
        if rec.get("step_time_s"):
            rec["step_time_s"] *= (0.6, 4.0)[k % 2]
            k += 1
        lines.append(json.dumps(rec))
    noisy.write_text("\n".join(lines) + "\n")
    out = tmp_path / "cpu-noisy.toml"
    cmd = [str(BIN / "timescale"), "calibrate", "-H", "cpu", "--refit", str(noisy), "--out", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and not out.exists(), p.stderr
    msg = p.stderr.strip()
    assert len(msg.splitlines()) == 1 and f"{out}: not written" in msg and "--force" in msg
    assert "is far above the calibration of" in msg and "(rates: 18.8%)" in msg
    forced = subprocess.run([*cmd, "--force"], capture_output=True, text=True, timeout=120)
    assert forced.returncode == 0 and out.exists(), forced.stderr
    assert "WARNING:" in forced.stderr and "written with --force although" in forced.stderr


def test_a_fit_worse_than_the_uncalibrated_datasheet_it_replaces_is_refused(tmp_path):
    """Issue 23, A2's second half: a fit must beat the model it replaces on held-out rows. For an
    uncalibrated file that model is the datasheet roofline, judged on the new fit's own steps
    (nothing of it was fitted). Nine steps timed exactly as tpu_v4's datasheet roofline predicts and
    three far off (x3, x0.3, x3): the roofline's median error on them is 0%, every fitted model's
    cross-validated one far more (the outliers pull each fold's fit), so the file is kept (exit 2,
    one line, unchanged) unless --force. The live calibration writes through the same
    `fit_and_write`."""
    from timescale_frontier import predict

    hw_file = tmp_path / "tpu_v4.toml"
    shutil.copy(SHIPPED_DIR / "tpu_v4.toml", hw_file)
    hw = Hardware.load(hw_file)
    assert not hw.calibrated
    rows = ["d_model,n_layers,n_heads,seq_len,batch_size,step_time_s"]
    off = (1, 3, 1, 1, 1, 1, 0.3, 1, 1, 3, 1, 1)
    for i, (d, n, b) in enumerate((d, n, b) for d in (512, 1024, 2048) for n in (4, 12) for b in (8, 32)):
        a = Architecture(d, n, d // 64, seq_len=1024, batch_size=b)
        rows.append(f"{d},{n},{d // 64},1024,{b},{predict(a, hw, 1).step_time_s * off[i]!r}")
    table = tmp_path / "steps.csv"
    table.write_text("\n".join(rows) + "\n")
    before = hw_file.read_bytes()
    cmd = [str(BIN / "timescale"), "calibrate", "-H", str(hw_file), "--from", str(table), "--out", str(hw_file)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    msg = p.stderr.strip()
    assert p.returncode == 2 and len(msg.splitlines()) == 1, p.stderr
    assert f"{hw_file}: kept: its uncalibrated datasheet roofline" in msg and "on these steps a median" in msg
    assert "of 0.0%" in msg and "--force" in msg
    assert hw_file.read_bytes() == before
    forced = subprocess.run([*cmd, "--force"], capture_output=True, text=True, timeout=120)
    assert forced.returncode == 0 and Hardware.load(hw_file).calibrated, forced.stderr
