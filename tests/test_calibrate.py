"""The JAX side: the reference model matches the core's counts, XLA's cost analysis agrees with
the op table's FLOPs (and differs from its bytes in a documented way), the fits recover known
coefficients, and calibrate + validate on this CPU meet the accuracy target on held-out configs."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from timescale_frontier import Architecture, Hardware, InvalidInputError, predict  # noqa: E402
from timescale_frontier.calibrate import fit, model  # noqa: E402
from timescale_frontier.hardware import SHIPPED_DIR  # noqa: E402

BIN = Path(sys.executable).parent
SMALL = [
    dict(d_model=128, n_layers=2, n_heads=4, seq_len=64, batch_size=2, vocab_size=512, attention="materialized"),
    dict(
        d_model=256,
        n_layers=3,
        n_heads=4,
        n_kv_heads=2,
        seq_len=128,
        batch_size=4,
        vocab_size=1024,
        attention="materialized",
        mlp="swiglu",
    ),
    dict(
        d_model=256,
        n_layers=2,
        n_heads=8,
        seq_len=32,
        batch_size=8,
        vocab_size=4096,
        tied_embeddings=True,
        attention="materialized",
    ),
    dict(d_model=128, n_layers=2, n_heads=4, seq_len=64, batch_size=2, vocab_size=512, attention="flash"),
]


@pytest.mark.parametrize("kw", SMALL)
def test_reference_model_has_the_cores_parameter_count(kw):
    a = Architecture(activation_bytes=4.0, **kw)
    assert model.count_params(model.init_params(a)) == predict(a, Hardware.load("cpu"), 1).params


def test_training_steps_reduce_the_loss():
    a = Architecture(64, 2, 4, seq_len=32, batch_size=4, vocab_size=256, activation_bytes=4.0)
    p, tokens = model.init_params(a), model.batch(a)
    o = model.init_opt_state(a, p)
    step = jax.jit(model.make_train_step(a, lr=3e-3))
    losses = []
    for _ in range(20):
        p, o, loss = step(p, o, *tokens)
        losses.append(float(loss))
    assert losses[0] == pytest.approx(np.log(256), rel=0.1)  # random init: uniform over 256 bytes
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("kw", SMALL)
def test_xla_cost_analysis_crosscheck(kw):
    """CPU backend, layers unrolled (XLA counts a while-loop body once). See docs/xla-crosscheck.md:
    XLA's FLOPs match the op table's hardware FLOPs; its "bytes accessed" is about twice our
    MEMCPY because XLA's CPU fusion keeps more passes than the table's fusion assumption."""
    a = Architecture(activation_bytes=4.0, **kw)
    p = model.init_params(a)
    o = model.init_opt_state(a, p)
    compiled = jax.jit(model.make_train_step(a, scan_layers=False)).lower(p, o, *model.batch(a)).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    assert cost["flops"] / a.hardware_flops_per_step() == pytest.approx(1.0, abs=0.03)
    assert 1.5 < cost["bytes accessed"] / a.memcpy_bytes_per_step() < 3.0


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
    t = fit.Fit(model_name, coeffs).predict(archs) * (1 + noise * rng.standard_normal(n))
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
    reports = fit.fit_all(archs, t, fit.Ceilings(1e11, 4e9))
    got = reports[name].fit.coeffs
    for k, v in coeffs.items():
        assert got[k] == pytest.approx(v, rel=1e-6, abs=1e-9 if k == "overhead_s" else 1e-20), k
    assert reports[name].heldout_median_abs_pct_error < 1e-6
    assert fit.choose(reports) in (name, "split", "linear")  # nested models fit exact data as well


def test_spearman_by_hand():
    assert fit.spearman(np.array([1.0, 2, 3, 4]), np.array([10.0, 20, 30, 40])) == pytest.approx(1.0)
    assert fit.spearman(np.array([1.0, 2, 3, 4]), np.array([4.0, 3, 2, 1])) == pytest.approx(-1.0)


def test_refuses_to_calibrate_a_gpu_file_from_cpu(tmp_path):
    from timescale_frontier.calibrate.run import calibrate

    with pytest.raises(InvalidInputError, match="device = 'gpu' but JAX runs on 'cpu'"):
        calibrate("h100_sxm", out=tmp_path / "x.toml")
    assert not (tmp_path / "x.toml").exists()


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
    from timescale_frontier.calibrate.run import load_measurements

    rows = load_measurements(path)
    archs = [Architecture(**{k: v for k, v in r.items() if k != "step_time_s"}) for r in rows]
    t = np.array([r["step_time_s"] for r in rows])
    reports = fit.fit_all(archs, t, fit.Ceilings(matmul, copy))
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


def test_calibrate_then_validate_on_held_out_configs(tmp_path):
    """Issue 3's acceptance run: `timescale calibrate --hardware cpu` (on a copy), then `timescale
    validate` on configurations measured in the same run but not fitted. Live timings on a shared
    machine are noisy, so this checks the pipeline and its bookkeeping, not an accuracy bound (the
    test above judges accuracy on recorded measurements)."""
    src = tmp_path / "cpu.toml"
    shutil.copy(SHIPPED_DIR / "cpu.toml", src)
    before = src.read_text()
    out, log = tmp_path / "cpu_calibrated.toml", tmp_path / "m.jsonl"
    p = subprocess.run(
        [
            str(BIN / "timescale"),
            "calibrate",
            "-H",
            str(src),
            "--out",
            str(out),
            "--measurements",
            str(log),
            "--n-fit",
            "20",
            "--n-validate",
            "10",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert p.returncode == 0, p.stderr
    assert src.read_text() == before  # --out leaves the input alone
    hw = Hardware.load(out)
    assert hw.calibrated and hw.calibration["backend"] == "cpu" and hw.calibration["n_samples"] >= 8
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["kind"] for r in records} == {"matmul", "copy", "train_step"}
    v = subprocess.run(
        [
            str(BIN / "timescale"),
            "validate",
            "-H",
            str(out),
            "--measurements",
            str(log),
            "--split",
            "validation",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert v.returncode == 0, v.stderr
    doc = json.loads(v.stdout)
    assert doc["n"] >= 3
    chosen = hw.calibration["model"]
    errors = {k.removesuffix(" (calibrated)"): v["median_abs_pct_error"] for k, v in doc["models"].items()}
    assert all(np.isfinite(e) and e >= 0 for e in errors.values()), errors
    # The file's default is the chosen model with the chosen coefficients: same predictions.
    assert errors[f"{chosen} (hardware file default)"] == pytest.approx(errors[chosen], rel=1e-9)
    # The chosen model is the one with the lowest cross-validated mean error on the fit split.
    assert hw.calibration["heldout_mean_abs_pct_error"] == min(
        a["heldout_mean_abs_pct_error"] for a in hw.calibration["alternatives"].values()
    )
    # The report shows the MEMCPY model's error next to the FLOPs model's, on the same data.
    assert {"memcpy", "flops"} <= set(errors)


def test_interrupted_calibration_leaves_the_file_intact(tmp_path):
    target = tmp_path / "cpu.toml"
    shutil.copy(SHIPPED_DIR / "cpu.toml", target)
    before = target.read_text()
    for sig in (signal.SIGINT, signal.SIGKILL):
        p = subprocess.Popen(
            [str(BIN / "timescale"), "calibrate", "-H", str(target), "-q"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(6)
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
        assert p.returncode != 0
        if sig == signal.SIGINT:
            assert "Traceback" not in err
        assert target.read_text() == before


def test_refit_tells_devices_apart_by_jax_device_kind():
    from timescale_frontier.calibrate.run import _backend_of

    assert _backend_of("cpu") == "cpu"
    assert _backend_of("TPU v4") == "tpu" and _backend_of("TPU v5 lite") == "tpu"
    assert _backend_of("NVIDIA H100 80GB HBM3") == "gpu"
