"""Money budgets and limited unique data (issue 6, parts 2 and 3)."""

import json

import pytest
from click.testing import CliRunner

from timescale_frontier import Architecture, Budget, Hardware, InvalidInputError, predict, search
from timescale_frontier.budget import resolve
from timescale_frontier.cli import frontier_main
from timescale_frontier.hardware import SHIPPED_DIR

SMALL = {"d_model": "256:2048:256", "n_layers": "2:24:2", "seq_len": "512,2048", "batch_size": "8,32,128"}
SMALL_FLAGS = [
    "--d-model",
    SMALL["d_model"],
    "--n-layers",
    SMALL["n_layers"],
    "--seq-len",
    SMALL["seq_len"],
    "--batch-size",
    SMALL["batch_size"],
]


def test_money_buys_hours_by_hand():
    # $5,000 / $3.22 per chip-hour = 1552.795 h; $100 on 4 chips at $2 = 12.5 h.
    tpu = Hardware.load("tpu_v4")
    b = resolve(Budget(usd=5000), tpu)
    assert b.hours == pytest.approx(1552.795, abs=1e-3) and b.limit == "money" and b.usd_per_chip_hour == 3.22
    b = resolve(Budget(usd=100, usd_per_chip_hour=2.0), Hardware.load("h100_sxm"), chips=4)
    assert b.hours == pytest.approx(12.5)
    # With hours too, the smaller budget wins.
    assert resolve(Budget(12, usd=5000), tpu).limit == "hours"


def test_cli_budget_usd_uses_the_hardware_price_and_the_smaller_budget():
    r = CliRunner().invoke(frontier_main, ["-H", "tpu_v4", "--budget-usd", "5000", "--format", "json", *SMALL_FLAGS])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["hours"] == pytest.approx(5000 / 3.22) and "$3.22/chip-hour" in doc["budget_text"]
    assert doc["budget"]["limit"] == "money"
    r = CliRunner().invoke(
        frontier_main, ["-H", "tpu_v4", "--budget-usd", "5000", "--hours", "12", "--format", "json", *SMALL_FLAGS]
    )
    assert json.loads(r.output)["hours"] == 12
    r = CliRunner().invoke(
        frontier_main,
        ["-H", "tpu_v4", "--budget-usd", "50", "--usd-per-chip-hour", "10", "--format", "json", *SMALL_FLAGS],
    )
    assert json.loads(r.output)["hours"] == pytest.approx(5.0)


def test_more_money_never_raises_the_best_loss():
    hw = Hardware.load("h100_sxm")
    losses = [search(hw, Budget(usd=usd), SMALL).best.loss for usd in (10, 100, 1000, 10000)]
    assert losses == sorted(losses, reverse=True) and losses[0] > losses[-1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["-H", "b200", "--budget-usd", "100"], "price.usd_per_chip_hour = missing"),
        (["-H", "tpu_v4"], "budget = none is invalid: expected hours, budget_usd or both"),
        (["-H", "tpu_v4", "--budget-usd", "-5"], "budget_usd = -5 is invalid: expected USD in"),
        (["-H", "tpu_v4", "--hours", "1", "--unique-tokens", "nan"], "unique_tokens = nan is invalid"),
    ],
)
def test_bad_money_and_data_inputs(args, message):
    r = CliRunner().invoke(frontier_main, [*args, *SMALL_FLAGS])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_repeated_data_by_hand():
    hw = Hardware.load("h100_sxm")
    a = Architecture(512, 8, 8, seq_len=1024, batch_size=8)
    # The plain law (data decay only): the tokens as trained, then Muennighoff's decay.
    free = predict(a, hw, 24, loss_terms="none")
    # Three epochs: R_D = 2, worth U (1 + 15.387756 (1 - e^(-2 / 15.387756))) = 2.875479 U fresh tokens.
    unique = free.tokens / 3
    limited = predict(a, hw, 24, unique_tokens=unique, loss_terms="none")
    assert limited.tokens == free.tokens and limited.epochs == pytest.approx(3.0)
    assert limited.effective_tokens == pytest.approx(2.875479 * unique, rel=1e-6)
    assert limited.loss > free.loss
    assert any("repeats the unique data" in w for w in limited.warnings)
    # Less than one epoch changes nothing.
    assert predict(a, hw, 24, unique_tokens=free.tokens * 2, loss_terms="none").loss == free.loss
    # The full law: the same decay of data, times the batch's token efficiency; and the parameters
    # beyond what the unique data can use decay too, so the loss is higher than data decay alone.
    full = predict(a, hw, 24, unique_tokens=unique, loss_terms="batch")
    t = full.loss_terms
    assert full.effective_tokens == pytest.approx(2.875479 * unique * t.batch_efficiency, rel=1e-6)
    both = predict(a, hw, 24, unique_tokens=unique, loss_terms="batch,repetition")
    assert both.loss_terms.effective_params <= both.loss_terms.law_params
    assert both.loss >= full.loss


def test_less_unique_data_never_lowers_the_best_loss_and_the_full_form_curbs_bigger_models():
    hw = Hardware.load("h100_sxm")
    for terms in ("none", None):
        free = search(hw, 24, SMALL, loss_terms=terms)
        scarce = search(hw, 24, SMALL, unique_tokens=free.best.tokens / 20, loss_terms=terms)
        assert scarce.best.loss > free.best.loss
        assert "passes over" in " ".join(scarce.explain())
    # With data scarce and only the data decay, tokens are worth less, so the plain law shifts the
    # optimum to more parameters; Muennighoff et al.'s full form also discounts parameters beyond
    # what the unique data can use (R_N* = 5.3), so it picks no bigger a model than that.
    plain = search(hw, 24, SMALL, loss_terms="none")
    plain_scarce = search(hw, 24, SMALL, unique_tokens=plain.best.tokens / 20, loss_terms="none")
    assert plain_scarce.best.params >= plain.best.params
    full_scarce = search(hw, 24, SMALL, unique_tokens=plain.best.tokens / 20, loss_terms="repetition")
    assert full_scarce.best.params <= plain_scarce.best.params


def test_the_api_chooses_the_chip_count_for_a_money_budget(tmp_path):
    """What the CLI's --chips auto does is the API's: each count gets the hours the money buys there."""
    hw = Hardware.load("h100_sxm")
    space = {"d_model": "1024:4096:1024", "n_layers": "8:32:8", "seq_len": [2048], "batch_size": [64, 256]}
    r = search(hw, Budget(usd=20_000), space, chips=[1, 2, 4, 8])
    assert [c.chips for c in r.chip_counts] == [1, 2, 4, 8]
    for c in r.chip_counts:
        assert c.budget.hours == pytest.approx(20_000 / 3.0 / c.chips)
    best = min((c for c in r.chip_counts if c.best), key=lambda c: (c.best.loss, c.chips))
    assert r.chips == best.chips and r.best.loss == best.best.loss
    assert r.budget.hours == pytest.approx(20_000 / 3.0 / r.chips)
    # predict chooses the same way among counts.
    p = predict(r.best.architecture, hw, Budget(usd=20_000), chips=[1, 2, 4, 8])
    assert p.chips == r.chips and p.loss == pytest.approx(r.best.loss, rel=1e-12)
    # auto: powers of two up to the interconnect's max_chips, at most 4096 (h100_sxm: 100,000), and
    # a network of one 256-chip slice (tpu_v5e without its multi-slice data-centre network) 256.
    counts = [c.chips for c in search(hw, Budget(usd=20_000), space, chips="auto").chip_counts]
    assert counts == [2**k for k in range(13)]
    text = (SHIPPED_DIR / "tpu_v5e.toml").read_text()
    assert "max_chips = 50944" in text
    one_slice = tmp_path / "tpu_v5e_one_slice.toml"
    one_slice.write_text(text.replace("max_chips = 50944", "max_chips = 256"))
    tpu = Hardware.load(one_slice)
    assert [c.chips for c in search(tpu, 12, space, chips="auto").chip_counts] == [2**k for k in range(9)]
    with pytest.raises(
        InvalidInputError, match="chips = 512 is invalid: expected at most interconnect.max_chips = 256"
    ):
        search(tpu, 1, space, chips=[4, 512])


def test_auto_chips_choose_the_lowest_loss_among_counts_that_fit_and_say_which_do_not():
    a = Architecture(4096, 32, 32, mlp="swiglu", seq_len=2048, batch_size=256)
    p = predict(a, Hardware.load("h100_sxm"), Budget(usd=5000), chips="auto")
    fitting = [c for c in p.chip_counts if c.fits_memory]
    assert fitting and any(not c.fits_memory for c in p.chip_counts)
    best = min(fitting, key=lambda c: c.loss)
    assert p.chips == best.chips and p.loss == best.loss and p.fits_memory
    # A count that does not fit can show a lower loss; it is listed, not chosen.
    assert min(c.loss for c in p.chip_counts) < p.loss
