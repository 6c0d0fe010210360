import json
import os
import subprocess
import sys

import numpy as np
import pytest

from timescale_frontier import (
    Architecture,
    EmptySpaceError,
    Hardware,
    InfeasibleError,
    InvalidInputError,
    SpaceTooLargeError,
    evaluate,
    make_space,
    predict,
    search,
)
from timescale_frontier._text import si
from timescale_frontier.architecture import SHAPE_FIELDS

SMALL = {
    "d_model": [256, 512, 768, 1024, 1536, 2048],
    "n_layers": [2, 4, 6, 8, 12, 16, 24],
    "seq_len": [512, 2048],
    "batch_size": [16, 64, 256],
}


def _all_configs(space):
    """Every well-formed configuration of a small space, as columns (via the space's own enumeration)."""
    archs = [a for a in (space.config_at(i) for i in range(space.size)) if a is not None]
    cols = {k: np.array([getattr(a, k) for a in archs]) for k in SHAPE_FIELDS}
    return archs, cols


def test_pareto_members_are_non_dominated_and_every_excluded_config_is_dominated():
    hw, hours, cap = Hardware.load("h100_sxm"), 2.0, 1e6
    space = make_space(SMALL)
    r = search(hw, hours, space, top_k=5, max_tokens_per_step=cap)
    archs, cols = _all_configs(space)
    m = evaluate(hw, hours, **cols)
    aspect = cols["d_model"] / cols["n_layers"]
    lo, hi = r.guards["aspect_ratio_min"], r.guards["aspect_ratio_max"]  # none: the default law prices shape
    feasible = (
        m.fits_memory & (m.steps >= 1) & (aspect >= lo) & (aspect <= hi) & (cols["seq_len"] * cols["batch_size"] <= cap)
    )
    assert feasible.sum() == r.feasible > 0
    loss, params = m.loss[feasible], m.params[feasible]
    front = list(zip(r.pareto.loss(), r.pareto.params(), strict=False))
    for fl, fp in front:
        assert not np.any((loss <= fl) & (params <= fp) & ((loss < fl) | (params < fp)))
    for l_, p_ in zip(loss, params, strict=False):
        assert any(fl <= l_ and fp <= p_ for fl, fp in front)
    # best = lowest loss; top sorted
    assert r.best.loss == loss.min()
    assert list(r.top.loss()) == sorted(r.top.loss())


def test_longer_budget_never_raises_best_loss():
    hw = Hardware.load("tpu_v5e")
    losses = [search(hw, h, SMALL).best.loss for h in (0.05, 0.5, 2, 12, 72, 500)]
    assert losses == sorted(losses, reverse=True)


def test_same_answer_whatever_the_thread_count():
    code = (
        "import json; from timescale_frontier import Hardware, search; "
        "r = search(Hardware.load('tpu_v4'), 12, {'d_model': '256:4096:256', 'n_layers': '2:48:2'}, top_k=20); "
        "d = r.to_dict(); print(json.dumps([d['top'], d['pareto']]))"
    )
    outs = []
    for threads in ("1", "2", "3"):
        env = dict(os.environ, RAYON_NUM_THREADS=threads)
        outs.append(
            json.loads(
                subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
            )
        )
    assert outs[0] == outs[1] == outs[2]


def test_default_space_has_millions_of_configs():
    assert make_space().size == 62_914_560


def test_infeasible_space_is_explained():
    with pytest.raises(InfeasibleError, match=r"do not fit in .* GiB of usable HBM \(the smallest of them needs"):
        search(
            Hardware.load("tpu_v5e"),
            1,
            {"d_model": [8192], "n_layers": [48], "batch_size": [512]},
            aspect_ratio=(1, 1000),
        )
    with pytest.raises(InfeasibleError, match="cannot finish one step"):
        search(Hardware.load("tpu_v5e"), 1e-7, SMALL)


def test_bad_spaces_and_arguments():
    hw = Hardware.load("tpu_v4")
    with pytest.raises(EmptySpaceError, match="d_model"):
        search(hw, 1, {"d_model": []})
    with pytest.raises(SpaceTooLargeError):
        search(hw, 1, {"d_model": list(range(1, 100_001)), "n_layers": list(range(1, 10_001))})
    with pytest.raises(InvalidInputError, match="hours"):
        search(hw, -1, SMALL)
    with pytest.raises(InvalidInputError, match="aspect_ratio"):
        search(hw, 1, SMALL, aspect_ratio=(200, 20))
    with pytest.raises(InvalidInputError, match="top"):
        search(hw, 1, SMALL, top_k=0)


def test_the_explanation_quotes_the_work_the_step_time_prices():
    # "Its step is dominated by ...": the FLOPs quoted are the ones the chip executes (the op table's
    # work behind the step time), not the model FLOPs of flops_per_step (Chinchilla's, for MFU).
    r = search(Hardware.load("tpu_v4"), 12, make_space({"d_model": [512, 1024], "n_layers": [8, 16]}))
    line = next(x for x in r.explain() if x.startswith("Its step is dominated by"))
    w, parts = r.best.step.work, r.best.step.parts
    assert f"computing takes {parts.compute_s:.3g} s (it executes {si(w.flops, 'FLOP')}" in line, line
    assert si(r.best.flops_per_step, "FLOP") not in line and w.flops < r.best.flops_per_step


def test_alternatives_are_run_as_the_search_would_run_them():
    # tpu_v4, 12 h, the plain law over batches up to 512 and micro-batches none, 1, 4: the
    # deeper-narrower alternative (640 x 24) needs micro-batches of 4 to fit, which the space offers;
    # it is priced that way, not declared not to fit.
    plain = {"loss_terms": "none"}
    r = search(Hardware.load("tpu_v4"), 12, {"batch_size": "8:512:*2", "micro_batch": "none,1,4"}, **plain)
    a = r.best.architecture
    deeper = a.reshaped(4.0)
    line = next(x for x in r.explain() if x.startswith("A deeper and narrower model"))
    # Run as the winner runs (the whole batch at once, no recomputation) it does not fit.
    assert a.micro_batch is None and a.recompute == "none"
    assert not predict(deeper, r.hardware, 12, **plain).fits_memory
    assert "does not fit" not in line and "(best with micro-batches of" in line, line
    mb = int(line.split("(best with micro-batches of ")[1].split(")")[0])
    p = predict(Architecture(**(deeper.to_dict() | {"micro_batch": mb})), r.hardware, 12, **plain)
    assert p.fits_memory and f"loss {p.loss:.4f} vs" in line
    # No other micro-batch of the space that fits does better.
    for other in r.space.axes()["micro_batch"]:
        if other is None or deeper.batch_size % other:
            continue
        q = predict(Architecture(**(deeper.to_dict() | {"micro_batch": other})), r.hardware, 12, **plain)
        assert not q.fits_memory or q.loss >= p.loss, other
    # A one-layer winner has no shallower alternative.
    one = search(Hardware.load("tpu_v4"), 12, make_space({"d_model": [1024], "n_layers": [1]}), aspect_ratio=(1, 1e4))
    assert not any("shallower" in x for x in one.explain())


def test_the_memory_plan_note_prices_the_plain_plan_with_the_same_data_limit():
    # The space forces full recomputation; the note prices the plan without it under the same
    # 1e8 unique tokens (repeated data discounted), as predict does, not with unlimited data.
    hw = Hardware.load("h100_sxm")
    space = {"d_model": "512:1024:256", "n_layers": "4:16:4", "recompute": "full", "micro_batch": "none"}
    terms = {"loss_terms": "none"}  # the plain law's answer is a model that fits without recomputation
    r = search(hw, 48, {**space, "seq_len": 2048, "batch_size": 32}, unique_tokens=1e8, **terms)
    line = next(x for x in r.explain() if "without them it would step in" in x)
    a = r.best.architecture
    plain = predict(Architecture(**(a.to_dict() | {"recompute": "none"})), hw, 48, unique_tokens=1e8, **terms)
    unlimited = predict(Architecture(**(a.to_dict() | {"recompute": "none"})), hw, 48, **terms)
    assert f"reach loss {plain.loss:.4f}" in line and f"{unlimited.loss:.4f}" not in line, line


def test_the_api_takes_what_a_notebook_has():
    import numpy as np

    hw = Hardware.load("h100_sxm")
    a = Architecture(1024, 8, 8)
    # Hardware by name, chip counts as numpy integers or any iterable, axes as arrays, tuples, ranges.
    p = predict(a, "h100_sxm", 1, chips=np.int64(8))
    assert p.chips == 8 and p.loss == predict(a, hw, 1, chips=8).loss
    assert predict(a, hw, 1, chips=np.array([1, 2])).chips in (1, 2)
    assert evaluate("h100_sxm", 1, d_model=1024, n_layers=8, n_heads=8).loss[0] == predict(a, hw, 1).loss
    for axis in (np.array([512, 1024]), (512, 1024), range(512, 1025, 512)):
        assert make_space({"d_model": axis}).axes()["d_model"] == [512, 1024]
    r = search("h100_sxm", 1, {"d_model": np.array([512, 1024]), "n_layers": (4, 8)})
    assert r.hardware.name == hw.name and r.space_size == make_space({"d_model": [512, 1024], "n_layers": [4, 8]}).size
    with pytest.raises(InvalidInputError, match="chips = 8.0 is invalid"):
        predict(a, hw, 1, chips=8.0)
    with pytest.raises(InvalidInputError, match="nope: no such hardware file or name"):
        predict(a, "nope", 1)


def test_the_unguarded_search_keeps_the_fitted_laws_name_and_refits(tmp_path):
    from timescale_frontier.loss import fit_law, save_law

    n = np.array([1e8, 2e8, 4e8, 8e8, 1.6e9, 3.2e9])
    d = 20 * n
    fit = fit_law(n, d, 1.7 + 400 / n**0.34 + 410 / d**0.28, n_bootstrap=20)
    path = tmp_path / "mine.law.toml"
    save_law(path, "mine", fit, "synthetic runs")
    r = search(Hardware.load("tpu_v4"), 2, {"d_model": [512, 1024], "n_layers": [2, 4]}, law=str(path))
    open_ = r.without_aspect_guard()
    assert open_.law_name == r.law_name == str(path) and len(open_.law_bootstrap) == len(r.law_bootstrap) > 0


def test_a_space_built_directly_refuses_repeated_values_and_an_empty_hardware_name():
    from timescale_frontier import _core

    with pytest.raises(InvalidInputError, match=r"d_model = 512 twice is invalid: expected distinct values"):
        search(Hardware.load("tpu_v4"), 1, _core.SearchSpace(d_model=[512, 512]))
    with pytest.raises(InvalidInputError, match="'': hardware file not found"):
        Hardware.load("")


def test_results_print_in_one_line_with_their_numbers():
    p = predict(Architecture(1024, 8, 8), "h100_sxm", 1)
    assert repr(p).startswith("Prediction(d_model=1024, n_layers=8, chips=1, loss=") and f"{p.loss:.4f}" in repr(p)
    r = search("tpu_v4", 1, {"d_model": [512, 1024]})
    assert repr(r.best).startswith(f"Candidate(index={r.best.index}, ") and f"loss={r.best.loss:.4f}" in repr(r.best)
