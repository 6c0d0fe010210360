"""The loss model's evidence terms against the published runs they come from (issue 21): the shape
term against Gemstones' iso-parameter groups, the batch term against Step Law's sweeps, the
vocabulary against Tao et al.'s optima, and the answers of a reduced sweep over chips and budgets
decided by that evidence, not by a guard or the edge of an axis.

The data are `data/loss/*.csv` (a copy of the shared loss evidence, provenance in its README)."""

import csv
import math
from collections import defaultdict
from pathlib import Path

import pytest

from timescale_frontier import Architecture, Law, get_law, search

DATA = Path(__file__).resolve().parents[2] / "data" / "loss"
LAW = get_law("besiroglu")


def _spearman(xs: list[float], ys: list[float]) -> float:
    def ranks(v: list[float]) -> list[float]:
        order = sorted(range(len(v)), key=v.__getitem__)
        r = [0.0] * len(v)
        for k, i in enumerate(order):
            r[i] = float(k)
        return r

    rx, ry = ranks(xs), ranks(ys)
    n = len(xs)
    return 1 - 6 * sum((a - b) ** 2 for a, b in zip(rx, ry, strict=True)) / (n * (n * n - 1))


#: Gemstones' iso-parameter groups (the shared README's, at about 110B tokens after cooldown).
GROUPS = {
    "100M": ["384x36", "512x16", "256x80", "512x12", "768x3", "256x71", "512x13"],
    "0.5B": ["1024x28", "768x45", "1280x15", "1792x7"],
    "1B": ["1280x36", "1792x18", "2560x8"],
    "2B": ["1536x50", "2048x27", "3072x12"],
}


def _gemstones() -> dict[str, tuple[int, int, float, float]]:
    """Each shape's cooled run at its most tokens: (d_model, n_layers, tokens, final loss)."""
    out: dict[str, tuple[int, int, float, float]] = {}
    with (DATA / "shape-runs.csv").open() as f:
        for row in csv.DictReader(f):
            if not row["loss_kind"].startswith("end of a linear cooldown"):
                continue
            d, l_ = int(row["d_model"]), int(row["n_layers"])
            key, tokens = f"{d}x{l_}", float(row["tokens"])
            if key not in out or tokens > out[key][2]:
                out[key] = (d, l_, tokens, float(row["final_loss"]))
    return out


def _gemstone(d: int, l_: int) -> Architecture:
    """A Gemstones model (model cards: heads of 128, two query heads per KV head, a GeGLU MLP of
    4 d_model, 50,304 tokens untied, context 2048, batches of 2048 sequences)."""
    return Architecture(
        d, l_, d // 128, n_kv_heads=d // 256, d_ff=4 * d, mlp="swiglu", vocab_size=50304, tied_embeddings=False,
        seq_len=2048, batch_size=2048,
    )  # fmt: skip


def test_the_shape_term_orders_gemstones_iso_parameter_groups():
    """The default law (Besiroglu plus the evidence terms) ranks each group's shapes as their
    measured losses do. Measured: Spearman 1.0 in every group (the cool-end fit was made on these
    runs, so this checks the term's use, not its out-of-sample skill); without the shape term the
    plain law ranks them by parameters alone."""
    runs = _gemstones()
    with_shape, without = {}, {}
    for name, members in GROUPS.items():
        measured, predicted, plain = [], [], []
        for key in members:
            d, l_, tokens, loss = runs[key]
            a = _gemstone(d, l_)
            measured.append(loss)
            predicted.append(LAW.loss_of(a, tokens))
            plain.append(LAW.with_terms(["vocab", "context", "batch"]).loss_of(a, tokens))
        with_shape[name], without[name] = _spearman(predicted, measured), _spearman(plain, measured)
    assert all(rho >= 0.8 for rho in with_shape.values()), with_shape
    assert sum(with_shape.values()) > sum(without.values()), (with_shape, without)
    # The widest-shallowest member of each group is its worst, as measured (+2.3% to +8.1%).
    for name, members in GROUPS.items():
        worst = max(members, key=lambda k: runs[k][3])
        assert runs[worst][0] / runs[worst][1] >= 256, (name, worst)
        d, l_, tokens, _ = runs[worst]
        assert LAW.loss_of(_gemstone(d, l_), tokens) == max(
            LAW.loss_of(_gemstone(*runs[k][:2]), runs[k][2]) for k in members
        )


def _step_law() -> dict[tuple[str, float], dict[float, float]]:
    """Each Step Law (model, tokens) sweep: the best smoothed final loss over the learning rate at
    each batch (tokens per step)."""
    best: dict[tuple[str, float], dict[float, float]] = defaultdict(dict)
    dims: dict[str, tuple[int, int, int, int]] = {}
    with (DATA / "batch-runs.csv").open() as f:
        for row in csv.DictReader(f):
            key, batch = (row["model"], float(row["tokens"])), float(row["batch_tokens"])
            loss = float(row["final_loss_smoothed"])
            best[key][batch] = min(loss, best[key].get(batch, math.inf))
            dims[row["model"]] = (int(row["d_model"]), int(row["n_layers"]), int(row["n_heads"]), int(row["d_ff"]))
    _step_law.dims = dims  # type: ignore[attr-defined]
    return best


def _step_law_loss(dims: tuple[int, int, int, int], batch_tokens: float, tokens: float) -> float:
    """Our law's loss for a Step Law model (SwiGLU MLP, context 2048) at a batch of tokens."""
    d, l_, h, ff = dims
    a = Architecture(d, l_, h, d_ff=ff, mlp="swiglu", seq_len=2048, batch_size=round(batch_tokens / 2048))
    return LAW.loss_of(a, tokens)


def test_the_batch_term_reproduces_step_laws_penalties_within_a_factor_of_two():
    """At the batch nearest 2x and 4x each sweep's best, the term's predicted loss increase (the
    same model and tokens, our law) against the measured one, averaged over the sweeps: within a
    factor of 2 (measured: +0.34% and +1.31% on average; issue 21)."""
    sweeps = _step_law()
    dims = _step_law.dims  # type: ignore[attr-defined]
    for factor in (2.0, 4.0):
        measured, predicted = [], []
        for (model, tokens), curve in sweeps.items():
            b_best = min(curve, key=curve.__getitem__)
            b = min(curve, key=lambda x: abs(math.log(x / (factor * b_best))))
            if b <= b_best * 1.2:
                continue  # no batch above the best in this sweep
            measured.append(curve[b] / curve[b_best] - 1)
            predicted.append(
                (_step_law_loss(dims[model], b, tokens) - _step_law_loss(dims[model], b_best, tokens)) / curve[b_best]
            )
        m, p = sum(measured) / len(measured), sum(predicted) / len(predicted)
        assert 0.5 <= p / m <= 2.0, (factor, m, p)


def test_tao_optimal_vocabularies_within_one_grid_step():
    """Tao et al. 2024's optimal vocabulary for 1e9 and 7e9 non-vocabulary parameters is on a
    power-of-two grid within one step of the paper's (their code's 29.5K; Table 1's 60K)."""
    for n, paper in ((1e9, 29_550), (7e9, 60_000)):
        v = Law.tao_optimal_vocab(n)
        assert abs(math.log2(v / paper)) <= 1, (n, v)


def test_a_vocabulary_axis_is_priced_on_one_scale():
    """h100_sxm, 12 h, vocabularies 8K to 256K: the answer takes a vocabulary within one step of the
    axis of Tao et al.'s optimum for its size, and its losses are per token of the law's reference
    vocabulary (a larger vocabulary's per-token loss is not compared as is)."""
    vocabs = [8000, 32000, 128000, 256000]
    r = search("h100_sxm", 12, {"vocab_size": vocabs}, top_k=5)
    a = r.best.architecture
    optimum = Law.tao_optimal_vocab(r.best.non_embedding_params)
    nearest = min(vocabs, key=lambda v: abs(math.log(v / optimum)))
    assert abs(vocabs.index(a.vocab_size) - vocabs.index(nearest)) <= 1, (a.vocab_size, optimum)
    # The same model at another vocabulary: its loss on the reference scale, not per own token.
    other = Architecture(**(a.to_dict() | {"vocab_size": 256000}))
    t = LAW.loss_terms(other, r.best.tokens)
    assert t.reference_ratio > 1 and t.vocab < 0
    assert "comparable across vocabularies" in " ".join(
        __import__("timescale_frontier.render", fromlist=["x"]).search_document(r, "table").splitlines()
    )


SWEEP_HARDWARE = ["h100_sxm", "tpu_v4", "a100_80gb"]


@pytest.mark.slow
@pytest.mark.parametrize("hardware", SWEEP_HARDWARE)
def test_answers_are_decided_by_the_evidence_not_by_a_guard_or_an_axis_edge(hardware):
    """A reduced version of issue 21's sweep (the full one is in the closing note): over budgets
    from 0.1 to 1000 h on 1 and 8 chips, no answer sits on an edge of the depth, width, context or
    batch axes because of the edge (the value beyond it is worse, or cannot run), and opening the
    aspect-ratio guard changes nothing: it is open by default (the shape term, not a guard, decides)."""
    for chips in (1, 8):
        for hours in (0.1, 12, 1000):
            r = search(hardware, hours, top_k=1, chips=chips)
            for e in r.edges():
                assert e.bind != "axis", (hardware, chips, hours, e)
            # The aspect-ratio guard is open by default (1e-6 to 1e9, no shape excluded): the shape
            # term decides, and a search with it opened again would be this one (it used to rerun).
            assert r.guards["aspect_ratio_min"] <= 1e-6 and r.guards["aspect_ratio_max"] >= 1e9


def test_predict_trains_for_a_number_of_tokens():
    """`predict --tokens N`: whole steps (rounded up), the wall-clock they take, each term."""
    from click.testing import CliRunner

    from timescale_frontier import predict
    from timescale_frontier.cli import main

    a = Architecture(1024, 16, 16, seq_len=2048, batch_size=64)  # 131,072 tokens per step
    p = predict(a, "h100_sxm", tokens=1e9)
    steps = math.ceil(1e9 / 131_072)  # 7630 (7629.4 rounded up)
    assert p.steps == steps == 7630 and p.tokens == steps * 131_072
    assert p.budget.seconds == pytest.approx(steps * p.step_time_s, rel=1e-9)
    t = p.loss_terms
    assert t.irreducible + t.params + t.data + t.shape + t.vocab + t.context == pytest.approx(p.loss, rel=1e-12)
    r = CliRunner().invoke(
        main,
        ["predict", "--d-model", "1024", "--n-layers", "16", "--n-heads", "16", "--batch-size", "64", "-H",
         "h100_sxm", "--tokens", "1e9", "--format", "json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    import json

    doc = json.loads(r.output)
    assert doc["steps"] == 7630 and doc["loss_terms"]["loss"] == pytest.approx(doc["loss"])
    assert doc["loss_terms_on"] == ["shape", "vocab", "context", "batch", "repetition"]
    # The plain law on request, and a bad count is one line.
    r = CliRunner().invoke(
        main,
        ["predict", "--d-model", "1024", "--n-layers", "16", "--n-heads", "16", "-H", "h100_sxm", "--tokens", "0",
         "--loss-terms", "none"],
    )  # fmt: skip
    assert r.exit_code == 2 and "tokens = 0 is invalid" in r.output


def test_a_money_budget_takes_the_quickest_of_tied_chip_counts_and_a_wall_clock_cap():
    """--budget-usd with --chips auto: among the counts tied with the lowest loss (within the
    model's uncertainty), the shortest wall-clock (equal chip-hours: the money buys them); never a
    year-long plan to win a tie; --max-hours caps the wall clock."""
    from timescale_frontier import Budget

    space = {"d_model": "1024:4096:512", "n_layers": "8:48:8", "seq_len": [2048], "batch_size": "64:2048:*2"}
    r = search("h100_sxm", Budget(usd=1_000_000), space, chips="auto", top_k=1)
    chosen = next(c for c in r.chip_counts if c.chips == r.chips)
    tied = [c for c in r.chip_counts if c.best is not None and (c.tie is not None or c.chips == r.chips)]
    assert chosen.budget.hours == min(c.budget.hours for c in tied)
    assert chosen.budget.hours < 24 * 365
    capped = search("h100_sxm", Budget(100, usd=1_000_000), space, chips="auto", top_k=1)
    assert capped.budget.hours <= 100


def test_a_configurations_step_error_widens_where_the_files_models_disagree():
    """Issue 21.7: the step time's error of a configuration is the file's cross-validated error, or
    more where the file's other calibrated models that fit its data about as well (held-out error
    within 2x) price it further apart. h100_sxm's alternatives fit 3x worse: its error stays 3.6%;
    on the CPU file the answer's tiny model is far from the calibration rows and its equally good
    models disagree by tens of percent, which the ties then count."""
    h100 = search("h100_sxm", 12, top_k=2)
    assert h100.step_time_error_of(h100.best) == pytest.approx(0.03638)
    cpu = search("cpu", 12, top_k=2)
    assert cpu.step_time_error_of(cpu.best) > 2 * cpu.step_time_error[0]
