"""The hostile-input corpus (tests/cli/bad_inputs/cases.toml): every case raises its exact exception
class through the API and exits non-zero from the CLI with a one-line message and no traceback."""

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

import timescale_frontier as tf
from timescale_frontier.cli import frontier_main

HERE = Path(__file__).parent / "bad_inputs"
CASES = tomllib.loads((HERE / "cases.toml").read_text())["case"]
SMALL = ["--d-model", "512,1024", "--n-layers", "4,8"]


def _id(case):
    return (
        case.get("file") or case.get("generate", "") + "-" + case["kind"]
        if case["kind"] != "cli"
        else " ".join(case["args"])
    )


def _input_path(case, tmp_path: Path) -> Path:
    if "file" in case:
        return HERE / case["file"]
    kind = case["generate"]
    p = tmp_path / f"{kind}.toml"
    if kind == "binary":
        p.write_bytes(bytes(range(256)) * 4)
    elif kind == "huge":
        p.write_text("# padding\n" * 200_000)
    elif kind == "directory":
        p.mkdir()
    return p  # "missing": never created


def _cli_args(case, tmp_path: Path) -> list[str]:
    if case["kind"] == "cli":
        return list(case["args"])
    path = str(_input_path(case, tmp_path))
    if case["kind"] == "hardware":
        return ["--hardware", path, "--hours", "12", *SMALL]
    extra = case.get("args", ["--hardware", "tpu_v4"])
    return [*extra, "--hours", "12", "--space", path]


def test_corpus_is_big_enough():
    assert len(CASES) >= 40
    assert {c["kind"] for c in CASES} == {"hardware", "space", "cli"}


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_cli_exits_non_zero_with_one_clear_line(case, tmp_path):
    r = CliRunner().invoke(frontier_main, _cli_args(case, tmp_path))
    assert r.exit_code == case["exit"], r.output
    assert case["message"] in r.output, r.output
    assert "Traceback" not in r.output
    if case["error"] != "UsageError":
        assert r.output.startswith("error: ") and len(r.output.strip().splitlines()) == 1, r.output


@pytest.mark.parametrize("case", [c for c in CASES if c["error"] != "UsageError"], ids=_id)
def test_api_raises_the_exact_class(case, tmp_path):
    expected = getattr(tf, case["error"])
    with pytest.raises(tf.TimescaleError) as e:
        if case["kind"] == "hardware":
            tf.Hardware.load(_input_path(case, tmp_path))
        elif case["kind"] == "space":
            space = tf.make_space(tf.load_space(_input_path(case, tmp_path)))
            hw = tf.Hardware.load(case.get("args", ["--hardware", "tpu_v4"])[1])
            tf.search(hw, 12, space, aspect_ratio=(1, 1000) if "args" in case else (20, 200))
        else:
            # --debug lets the exception through the CLI's handler.
            r = CliRunner().invoke(frontier_main, [*case["args"], "--debug"])
            raise r.exception  # type: ignore[misc]
    assert type(e.value) is expected, f"{type(e.value).__name__}: {e.value}"
    assert case["message"] in str(e.value)


def test_debug_shows_the_traceback():
    r = CliRunner().invoke(frontier_main, ["--hardware", "nope", "--hours", "1", "--debug"])
    assert isinstance(r.exception, tf.InvalidInputError)
