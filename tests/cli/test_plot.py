"""The pictures are produced (PNG files with content), from the same numbers the search returns."""

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("matplotlib", reason="plots need matplotlib (pip install '.[plot]')")

from timescale_frontier import Hardware, search  # noqa: E402
from timescale_frontier.cli import frontier_main, main  # noqa: E402
from timescale_frontier.plot import width_depth  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def test_frontier_plot_from_the_cli(tmp_path):
    out = tmp_path / "frontier.png"
    r = CliRunner().invoke(
        frontier_main,
        [
            "-H",
            "tpu_v5e",
            "--hours",
            "6",
            "--plot",
            str(out),
            "--d-model",
            "256:2048:256",
            "--n-layers",
            "2:24:2",
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    data = out.read_bytes()
    assert data.startswith(PNG) and len(data) > 20_000


def test_plots_are_written_like_every_output(tmp_path):
    small = ["--d-model", "256,512", "--n-layers", "2,4", "-q"]
    # Into a folder that does not exist: bad input naming the user's path (no temporary name).
    missing = tmp_path / "nodir" / "x.png"
    r = CliRunner().invoke(frontier_main, ["-H", "tpu_v4", "--hours", "1", "--plot", str(missing), *small])
    assert r.exit_code == 2, r.output
    assert f"error: {missing}: cannot write (No such file or directory)" in r.output and ".tmp" not in r.output
    r = CliRunner().invoke(main, ["report", "width-depth", "-H", "tpu_v4", "--hours", "1", "--out", str(missing)])
    assert r.exit_code == 2 and f"{missing}: cannot write" in r.output, r.output
    # The suffix picks the format; the file's permissions are kept when it is replaced.
    svg = tmp_path / "x.svg"
    svg.write_text("old")
    svg.chmod(0o640)
    r = CliRunner().invoke(frontier_main, ["-H", "tpu_v4", "--hours", "1", "--plot", str(svg), *small])
    assert r.exit_code == 0, r.output
    assert svg.read_text().startswith("<?xml") and (svg.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.svg"]  # no temporary file left
    # Never over one of the run's inputs, and never to standard output (the report goes there).
    hw = tmp_path / "hw.toml"
    hw.write_bytes(Hardware.load("tpu_v4").path.read_bytes())
    for args in (["--plot", str(hw)], ["--plot", "-"]):
        r = CliRunner().invoke(frontier_main, ["-H", str(hw), "--hours", "1", *args, *small])
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert hw.read_bytes() == Hardware.load("tpu_v4").path.read_bytes()
    r = CliRunner().invoke(main, ["report", "width-depth", "-H", str(hw), "--hours", "1", "--out", str(hw)])
    assert r.exit_code == 2 and f"{hw}: is one of this run's inputs" in r.output, r.output


def test_width_depth_heatmap_matches_the_search(tmp_path):
    hw = Hardware.load("h100_sxm")
    d_models, layers = [256, 512, 1024, 2048], [2, 4, 8, 16]
    picture = width_depth(hw, 12, d_models, layers, tmp_path / "wd.png", aspect_ratio=(1e-3, 1e6), top_k=1)
    grid = picture.grid
    assert (tmp_path / "wd.png").read_bytes().startswith(PNG)
    # The star is the search's own answer over the whole (default) space, not a cell of the grid
    # (issue 26.6: the picture showed the grid's best cell as "the search's answer").
    whole = search(hw, 12, top_k=1).best
    assert picture.answer == (whole.architecture.d_model, whole.architecture.n_layers, whole.loss)
    # Each cell is the best loss of a search restricted to that (d_model, n_layers).
    r = search(hw, 12, {"d_model": [1024], "n_layers": [4]}, aspect_ratio=(1e-3, 1e6))
    assert grid[1, 2] == r.best.loss
    assert np.isfinite(grid).all()
    r = CliRunner().invoke(
        main,
        [
            "report",
            "width-depth",
            "-H",
            "h100_sxm",
            "--hours",
            "12",
            "--d-model",
            "256,1024",
            "--n-layers",
            "2,8",
            "--out",
            str(tmp_path / "cli.png"),
        ],
    )
    assert r.exit_code == 0 and "best cell of this grid" in r.output and (tmp_path / "cli.png").exists()
    assert "the search's answer over the whole space" in r.output


def test_width_depth_on_many_chips(tmp_path):
    """With --chips each cell is the best loss of a many-chip search (fastest sharding per config)."""
    from timescale_frontier.plot import width_depth

    hw = Hardware.load("h100_sxm")
    grid = width_depth(
        hw, 12, [1024, 4096], [4, 16], tmp_path / "wd8.png", aspect_ratio=(1e-3, 1e6), top_k=1, chips=8
    ).grid
    r = search(hw, 12, {"d_model": [4096], "n_layers": [16]}, aspect_ratio=(1e-3, 1e6), chips=8)
    assert grid[1, 1] == r.best.loss and r.best.step.sharding != "single chip"
    one = width_depth(hw, 12, [1024, 4096], [4, 16], tmp_path / "wd1.png", aspect_ratio=(1e-3, 1e6), top_k=1).grid
    assert np.nanmin(grid) < np.nanmin(one)  # eight chips for the same hours reach a lower loss
    bad = CliRunner().invoke(main, ["report", "width-depth", "-H", "cpu", "--hours", "1", "--chips", "2"])
    assert bad.exit_code == 2 and "needs an [interconnect] section" in bad.output
