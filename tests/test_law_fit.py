"""`timescale fit-law`: a law fitted to synthetic runs generated from known coefficients (with
noise) recovers them within its bootstrap intervals, and the saved law drives the search."""

import json
import tomllib

import numpy as np
import pytest
from click.testing import CliRunner

from timescale_frontier import InvalidInputError, get_law
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
    lo, hi = loss_interval(fit.bootstrap, 1e9, 2e10)
    assert lo <= fit.law.loss(1e9, 2e10) <= hi and hi - lo < 0.1


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
    assert r.exit_code == 2 and "bootstrap = 200000 is invalid: expected at most 100000 refits" in r.output
    # Ctrl-C between refits: a long bootstrap stops at once, exit 130, nothing written.
    exe = Path(sys.executable).parent / "timescale"
    out = tmp_path / "long.toml"
    p = subprocess.Popen([str(exe), "fit-law", str(runs), "--out", str(out), "--bootstrap", "100000", "-q"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(2.0)
    assert p.poll() is None
    sent = time.perf_counter()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130 and err.strip() == "interrupted" and time.perf_counter() - sent < 2.0
    assert not out.exists()


# The shape term (issue 16): c (ln(d_model / n_layers / aspect_opt))^2 fitted from runs that differ
# in shape at a similar size and token count. Synthetic runs: the besiroglu law plus a term with
# c = 0.03 and aspect_opt = 40 chosen by hand, +-0.002 alternating between two seeds.
SHAPES = [(448, 1), (320, 2), (256, 3), (192, 6), (128, 12), (96, 20)]


def _shape_csv(path, c=0.03, opt=40.0, noise=0.002):
    rows = ["d_model,n_layers,params,tokens,loss"]
    for i, (d, n) in enumerate(SHAPES):
        params = 2.4e6 + 1e4 * i
        for seed in (0, 1):
            s = c * np.log(d / n / opt) ** 2
            rows.append(f"{d},{n},{params},{4e7},{TRUE.loss(params, 4e7) + s + (noise if seed else -noise)}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_shape_term_is_fitted_saved_and_used_by_predict_and_search(tmp_path):
    runs, shape, out = _runs_csv(tmp_path / "runs.csv"), _shape_csv(tmp_path / "shape.csv"), tmp_path / "s.law.toml"
    r = CliRunner().invoke(
        main, ["fit-law", str(runs), "--shape-runs", str(shape), "--out", str(out), "--bootstrap", "200"]
    )
    assert r.exit_code == 0, r.output
    assert "shape term" in r.output and "aspect ratios 4.8-448" in r.output
    law = get_law(out)
    assert law.shape is not None
    c, opt = law.shape
    assert c == pytest.approx(0.03, rel=0.05) and opt == pytest.approx(40.0, rel=0.05)
    doc = tomllib.loads(out.read_text())["law"]["shape"]
    assert doc["c_interval"][0] <= 0.03 <= doc["c_interval"][1]
    assert doc["aspect_opt_interval"][0] <= 40.0 <= doc["aspect_opt_interval"][1]
    assert doc["aspect_range"] == [96 / 20, 448.0]
    # The term by hand: 2048 wide, 4 deep is aspect 512, ln(512 / opt)^2 c; 640 x 16 is aspect 40.
    assert law.shape_term(2048, 4) == pytest.approx(c * np.log(512 / opt) ** 2, rel=1e-12)
    assert law.loss_of_shape(1e8, 1e10, 640, 16) == pytest.approx(law.loss(1e8, 1e10) + c * np.log(40 / opt) ** 2)
    # The search prices shape with it, and drops the aspect guard by default (the term is the evidence).
    args = ["-H", "h100_sxm", "--hours", "6", "--format", "json", "--d-model", "512:2048:256", "--n-layers", "2:32:2"]
    r = CliRunner().invoke(frontier_main, [*args, "--law", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    best = doc["best"]
    assert doc["guards"]["aspect_ratio_min"] == 1e-6 and doc["guards"]["aspect_ratio_max"] == 1e9
    expected = law.loss_of_shape(best["params"], best["tokens"], best["d_model"], best["n_layers"])
    assert best["loss"] == pytest.approx(expected, rel=1e-12)
    assert best["loss"] > law.loss(best["params"], best["tokens"]) or best["d_model"] / best["n_layers"] == 40
    # The explanation says what the term costs the answer.
    r = CliRunner().invoke(frontier_main, [*args[:-2], "--n-layers", "2:32:2", "--law", str(out), "--format", "table"])
    assert r.exit_code == 0 and "The law prices shape" in r.output, r.output
    # An explicit guard still applies.
    r = CliRunner().invoke(frontier_main, [*args, "--law", str(out), "--aspect-ratio", "100:200"])
    assert r.exit_code == 0, r.output
    b = json.loads(r.output)["best"]
    assert 100 <= b["d_model"] / b["n_layers"] <= 200


def test_shape_runs_without_an_optimum_are_refused(tmp_path):
    runs, out = _runs_csv(tmp_path / "runs.csv"), tmp_path / "s.law.toml"
    # Loss that only falls as the models get wider (a concave dependence): no optimum to fit.
    shape = _shape_csv(tmp_path / "shape.csv", c=-0.01)
    r = CliRunner().invoke(main, ["fit-law", str(runs), "--shape-runs", str(shape), "--out", str(out)])
    assert r.exit_code == 2
    assert "shape.csv" in r.output and "convex" in r.output and "Traceback" not in r.output
    assert not out.exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("d_model,n_layers,params,tokens,loss\n128,2,1e6,1e7,2.0\n")
    r = CliRunner().invoke(main, ["fit-law", str(runs), "--shape-runs", str(bad), "--out", str(out)])
    assert r.exit_code == 2 and "at least 3 aspect ratios" in r.output, r.output
