"""`timescale fit-law`: a law fitted to synthetic runs generated from known coefficients (with
noise) recovers them within its bootstrap intervals, and the saved law drives the search."""

import json
import tomllib

import numpy as np
import pytest
from click.testing import CliRunner

from timescale_frontier import Architecture, InvalidInputError, get_law
from timescale_frontier.cli import frontier_main, main
from timescale_frontier.loss import fit_law, loss_interval

TRUE = get_law("besiroglu")  # E 1.8172, A 482.01, B 2085.43, alpha 0.3478, beta 0.3658


def _runs_csv(path, noise=0.005, seed=0):
    rng = np.random.default_rng(seed)
    rows = ["params,tokens,loss"]
    for n in [1e7, 3e7, 1e8, 3e8, 1e9, 3e9]:
        for d in [1e9, 3e9, 1e10, 3e10, 1e11]:
            rows.append(f"{n},{d},{TRUE.loss(n, d) * (1 + noise * rng.uniform(-1, 1))}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_recovers_known_coefficients_within_the_bootstrap_interval(tmp_path):
    runs, out = _runs_csv(tmp_path / "runs.csv"), tmp_path / "mine.law.toml"
    r = CliRunner().invoke(main, ["fit-law", str(runs), "--out", str(out), "--bootstrap", "100"])
    assert r.exit_code == 0, r.output
    law = get_law(out)
    truth = {"E": TRUE.e, "A": TRUE.a, "B": TRUE.b, "alpha": TRUE.alpha, "beta": TRUE.beta}
    text = out.read_text()
    for name, value in truth.items():
        lo, hi = (float(x) for x in text.split(f"\n{name} = [")[1].split("]")[0].split(","))
        assert lo <= value <= hi, f"{name}: {value} not in [{lo}, {hi}]"
    assert law.fit_params == (1e7, 3e9) and law.fit_tokens == (1e9, 1e11)
    # The saved law drives the search and its predicted loss.
    r = CliRunner().invoke(
        frontier_main,
        [
            "-H",
            "h100_sxm",
            "--hours",
            "6",
            "--law",
            str(out),
            "--format",
            "json",
            "--d-model",
            "512:2048:256",
            "--n-layers",
            "4:16:4",
        ],
    )
    assert r.exit_code == 0, r.output
    best = json.loads(r.output)["best"]
    assert best["loss"] == pytest.approx(law.loss(best["params"], best["tokens"]))
    # The fitted law's bootstrap refits give the winner a prediction interval.
    lo, hi = best["loss_interval_95"]
    assert lo <= best["loss"] <= hi and hi - lo < 0.2
    r = CliRunner().invoke(
        frontier_main,
        ["-H", "h100_sxm", "--hours", "6", "--law", str(out), "--d-model", "512:2048:256", "--n-layers", "4:16:4"],
    )
    assert "95% interval" in r.output and "bootstrap refits of the law" in r.output


def test_prediction_interval_from_the_bootstrap(tmp_path):
    runs = np.loadtxt(_runs_csv(tmp_path / "runs.csv"), delimiter=",", skiprows=1)
    fit = fit_law(runs[:, 0], runs[:, 1], runs[:, 2], n_bootstrap=50)
    a = Architecture(2048, 18, 16)  # about 1e9 parameters
    lo, hi = loss_interval(fit.bootstrap, a, 2e10)
    assert lo <= fit.law.loss_of(a, 2e10) <= hi and hi - lo < 0.1
    # Negative counts are range errors from the API too (a raw OverflowError before).
    with pytest.raises(InvalidInputError, match=r"seed = -1 is invalid: expected an integer in \[0, "):
        fit_law(runs[:, 0], runs[:, 1], runs[:, 2], n_bootstrap=5, seed=-1)
    with pytest.raises(InvalidInputError, match="bootstrap = -5 is invalid"):
        fit_law(runs[:, 0], runs[:, 1], runs[:, 2], n_bootstrap=-5)


@pytest.mark.parametrize(
    "content, message",
    [
        ("params,tokens,loss\n1e9,1e10,2.5\n", "at least 5"),
        ("params,tokens\n1e9,1e10\n", "column 'loss' missing"),
        (
            "params,tokens,loss\n" + "1e9,1e10,-2\n" * 6,
            "bad.csv: run 1: loss = -2 is invalid: expected a finite number > 0",
        ),
    ],
)
def test_bad_runs_files(tmp_path, content, message):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    r = CliRunner().invoke(main, ["fit-law", str(f), "--out", str(tmp_path / "x.toml")])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "x.toml").exists()


def test_bad_law_files(tmp_path):
    f = tmp_path / "l.toml"
    f.write_text("[law]\ne = 1.0\n")
    with pytest.raises(InvalidInputError, match="missing key 'law.a'"):
        get_law(f)


def test_law_files_round_trip_any_name_and_source(tmp_path):
    """Names and paths with quotes, backslashes and newlines: the written file is TOML the loader
    accepts (it is checked by the loader before it is written), with the strings intact."""
    odd = tmp_path / 'we"ird\\dir'
    odd.mkdir()
    runs = _runs_csv(odd / "runs.csv")
    out = tmp_path / "odd.law.toml"
    name = 'my "law"\nsecond line'
    r = CliRunner().invoke(main, ["fit-law", str(runs), "--out", str(out), "--bootstrap", "20", "--name", name])
    assert r.exit_code == 0, r.output
    doc = tomllib.loads(out.read_text())
    assert doc["law"]["name"] == name and str(runs) in doc["law"]["source"]
    assert get_law(str(out)).beta == doc["law"]["beta"]
    # The runs file itself is never the output.
    r = CliRunner().invoke(main, ["fit-law", str(runs), "--out", str(runs), "--bootstrap", "20"])
    assert r.exit_code == 2 and "is one of this run's inputs" in r.output


def test_fit_law_is_bounded_and_stops_on_ctrl_c(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    runs = _runs_csv(tmp_path / "runs.csv")
    r = CliRunner().invoke(main, ["fit-law", str(runs), "--out", str(tmp_path / "x.toml"), "--bootstrap", "200000"])
    assert r.exit_code == 2 and "bootstrap = 200000 is invalid: expected an integer in [0, 100000]" in r.output
    # Ctrl-C between refits: a long bootstrap stops at once, exit 130, nothing written.
    exe = Path(sys.executable).parent / "timescale"
    out = tmp_path / "long.toml"
    p = subprocess.Popen([str(exe), "fit-law", str(runs), "--out", str(out), "--bootstrap", "60000", "-q"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(2.0)
    assert p.poll() is None
    sent = time.perf_counter()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130 and err.strip() == "interrupted" and time.perf_counter() - sent < 2.0
    assert not out.exists()


# The shape term (issue 16): c (ln(d_model / n_layers / aspect_opt))^2 fitted from runs that differ
# in shape at a similar size and token count, the law refitted net of it. Synthetic runs: the
# besiroglu law plus a term with c = 0.03 and aspect_opt = 40 chosen by hand, +-0.002 alternating.
SHAPES = [(448, 1), (320, 2), (256, 3), (192, 6), (128, 12), (96, 20)]
C, OPT = 0.03, 40.0


def _term(d, n, c=C, opt=OPT):
    return c * np.log(d / n / opt) ** 2


def _shaped_runs_csv(path, noise=0.002, seed=0):
    """The law's runs, each with a shape (aspect ratios 128, 32 and 256 in turn) and its term."""
    rng = np.random.default_rng(seed)
    rows = ["d_model,n_layers,params,tokens,loss"]
    shapes = [(1024, 8), (512, 16), (2048, 8)]
    for i, n in enumerate([1e7, 3e7, 1e8, 3e8, 1e9, 3e9]):
        for j, d in enumerate([1e9, 3e9, 1e10, 3e10, 1e11]):
            w, depth = shapes[(i + j) % 3]
            loss = TRUE.loss(n, d) + _term(w, depth) + noise * rng.uniform(-1, 1)
            rows.append(f"{w},{depth},{n},{d},{loss}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _shape_csv(path, c=C, opt=OPT, noise=0.002):
    rows = ["d_model,n_layers,params,tokens,loss"]
    for i, (d, n) in enumerate(SHAPES):
        params = 2.4e6 + 1e4 * i
        for seed in (0, 1):
            loss = TRUE.loss(params, 4e7) + _term(d, n, c, opt) + (noise if seed else -noise)
            rows.append(f"{d},{n},{params},{4e7},{loss}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_shape_term_is_fitted_saved_and_used_by_predict_and_search(tmp_path):
    runs, shape = _shaped_runs_csv(tmp_path / "runs.csv"), _shape_csv(tmp_path / "shape.csv")
    out = tmp_path / "s.law.toml"
    r = CliRunner().invoke(
        main, ["fit-law", str(runs), "--shape-runs", str(shape), "--out", str(out), "--bootstrap", "200"]
    )
    assert r.exit_code == 0, r.output
    assert "shape term" in r.output and "aspect ratios 4.8-448" in r.output
    doc = tomllib.loads(out.read_text())["law"]
    sh = doc["shape"]
    assert sh["c"] == pytest.approx(C, rel=0.05) and sh["aspect_opt"] == pytest.approx(OPT, rel=0.05)
    assert sh["c_interval"][0] <= C <= sh["c_interval"][1]
    assert sh["aspect_opt_interval"][0] <= OPT <= sh["aspect_opt_interval"][1]
    assert sh["aspect_range"] == [96 / 20, 448.0]
    # Net of the term, the law is besiroglu's again (fitted without it, E would absorb the runs'
    # average penalty, 0.03 ln(128/40)^2 etc.: about 0.04).
    assert doc["e"] == pytest.approx(TRUE.e, rel=0.02) and doc["alpha"] == pytest.approx(TRUE.alpha, rel=0.05)
    assert all(len(row) == 7 for row in doc["bootstrap"])  # each refit with its own (c, aspect_opt)
    law = get_law(out)
    c, opt, lo, hi = law.shape
    assert (lo, hi) == (96 / 20, 448.0) and law.aspect_domain == (lo, hi)

    def by_hand(params, tokens, d_model, n_layers):
        """E + A / N^alpha + B / D^beta + c ln(d_model / n_layers / aspect_opt)^2, from the file."""
        plain = doc["e"] + doc["a"] / params ** doc["alpha"] + doc["b"] / tokens ** doc["beta"]
        return plain + sh["c"] * np.log(d_model / n_layers / sh["aspect_opt"]) ** 2

    assert law.loss_of_shape(1e8, 1e10, 2048, 4) == pytest.approx(by_hand(1e8, 1e10, 2048, 4), rel=1e-12)
    # The search prices shape with it, with no aspect-ratio guard by default: the term decides,
    # and a shape outside those measured (4.8-448) is flagged, not refused.
    args = ["-H", "h100_sxm", "--hours", "6", "--format", "json", "--d-model", "512:2048:256", "--n-layers", "1:32:1"]
    r = CliRunner().invoke(frontier_main, [*args, "--law", str(out)])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    best = result["best"]
    assert (result["guards"]["aspect_ratio_min"], result["guards"]["aspect_ratio_max"]) == (1e-6, 1e9)
    assert best["loss"] == pytest.approx(by_hand(best["params"], best["tokens"], best["d_model"], best["n_layers"]))
    assert best["loss_terms"]["shape"] == pytest.approx(
        sh["c"] * np.log(best["d_model"] / best["n_layers"] / sh["aspect_opt"]) ** 2, rel=1e-9
    )
    # The explanation says what the term costs the answer.
    r = CliRunner().invoke(frontier_main, [*args, "--law", str(out), "--format", "table"])
    assert r.exit_code == 0 and "the fitted shape term" in r.output, r.output
    # An explicit guard still applies.
    r = CliRunner().invoke(frontier_main, [*args, "--law", str(out), "--aspect-ratio", "100:200"])
    assert r.exit_code == 0, r.output
    b = json.loads(r.output)["best"]
    assert 100 <= b["d_model"] / b["n_layers"] <= 200
    # predict flags a shape outside the measured ones, quoting them.
    r = CliRunner().invoke(
        main,
        ["predict", "--d-model", "4096", "--n-layers", "2", "--n-heads", "32", "-H", "h100_sxm", "--hours", "6",
         "--law", str(out), "--format", "json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert any("outside 4.8 to 448" in w for w in json.loads(r.output)["warnings"]), r.output
    r = CliRunner().invoke(
        main,
        ["predict", "--d-model", "2048", "--n-layers", "4", "--n-heads", "16", "-H", "h100_sxm", "--hours", "6",
         "--law", str(out)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    shown = float(r.output.split("+ shape ")[1].split()[0])
    assert shown == pytest.approx(sh["c"] * np.log(512 / sh["aspect_opt"]) ** 2, abs=1e-4)


def test_shape_runs_that_do_not_establish_a_term_are_refused(tmp_path):
    runs, out = _shaped_runs_csv(tmp_path / "runs.csv"), tmp_path / "s.law.toml"
    # Loss that only falls as the models get wider (a concave dependence): no optimum to fit.
    shape = _shape_csv(tmp_path / "shape.csv", c=-0.01)
    r = CliRunner().invoke(main, ["fit-law", str(runs), "--shape-runs", str(shape), "--out", str(out)])
    assert r.exit_code == 2
    assert "shape.csv" in r.output and "convex" in r.output and "Traceback" not in r.output
    assert not out.exists()
    # A curvature lost in the noise: its bootstrap interval reaches 0.
    weak = _shape_csv(tmp_path / "weak.csv", c=0.0003, noise=0.02)
    r = CliRunner().invoke(main, ["fit-law", str(runs), "--shape-runs", str(weak), "--out", str(out)])
    assert r.exit_code == 2 and ("excludes 0" in r.output or "show none" in r.output), r.output
    bad = tmp_path / "bad.csv"
    bad.write_text("d_model,n_layers,params,tokens,loss\n128,2,1e6,1e7,2.0\n")
    r = CliRunner().invoke(main, ["fit-law", str(runs), "--shape-runs", str(bad), "--out", str(out)])
    assert r.exit_code == 2 and "at least 3 aspect ratios" in r.output, r.output
    # The law's runs need their shapes too, to be fitted net of the term.
    plain = _runs_csv(tmp_path / "plain.csv")
    r = CliRunner().invoke(main, ["fit-law", str(plain), "--shape-runs", str(shape), "--out", str(out)])
    assert r.exit_code == 2 and "column 'd_model' missing" in r.output, r.output
    assert not out.exists()


def test_fit_law_columns_must_be_one_dimensional_numbers():
    n = np.array([[1e8, 2e8, 4e8, 8e8, 1.6e9, 3.2e9]])
    with pytest.raises(InvalidInputError, match=r"params: columns must be one-dimensional, got shape \(1, 6\)"):
        fit_law(n, 20 * n, n)
    with pytest.raises(InvalidInputError, match="params: not a column of numbers"):
        fit_law(["a"], [1.0], [1.0])
