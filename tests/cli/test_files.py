"""The one function that writes every file the tool produces (``_files.write_atomic``): what it does
with regular files, links, devices and the run's own inputs, and what a failed write leaves."""

import os
import stat
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from timescale_frontier._files import write_atomic
from timescale_frontier.cli import frontier_main
from timescale_frontier.errors import InvalidInputError
from timescale_frontier.hardware import SHIPPED_DIR

SMALL = ["--d-model", "512:1024:512", "--n-layers", "4:8:4"]


def test_a_replaced_file_keeps_its_permissions_and_a_new_one_gets_the_umasks(tmp_path):
    f = tmp_path / "answer.json"
    f.write_text("old")
    os.chmod(f, 0o644)
    write_atomic(f, "new")
    assert f.read_text() == "new" and stat.S_IMODE(f.stat().st_mode) == 0o644
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "fresh.json", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "fresh.json").stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answer.json", "fresh.json"]  # nothing else left


def test_a_symlink_is_followed_and_stays_a_link(tmp_path):
    (tmp_path / "real.csv").write_text("old")
    (tmp_path / "link.csv").symlink_to("real.csv")
    write_atomic(tmp_path / "link.csv", "new")
    assert (tmp_path / "link.csv").is_symlink() and (tmp_path / "real.csv").read_text() == "new"


def test_a_fifo_is_written_in_place(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    write_atomic(fifo, "through the pipe")
    reader.join(timeout=10)
    assert got == ["through the pipe"] and stat.S_ISFIFO(fifo.stat().st_mode)


def test_dash_is_stdout(capsys):
    assert write_atomic("-", "to stdout\n") is None
    assert capsys.readouterr().out == "to stdout\n"


def test_a_failed_write_names_the_users_path_and_leaves_nothing(tmp_path):
    with pytest.raises(InvalidInputError, match=r"^.*missing/out\.json: cannot write \(No such file or directory\)$"):
        write_atomic(tmp_path / "missing" / "out.json", "x")
    locked = tmp_path / "ro"
    locked.mkdir()
    (locked / "out.json").write_text("old")
    os.chmod(locked, 0o500)
    try:
        if os.access(locked, os.W_OK):
            # Root ignores directory permissions (CI runs as root): a directory no one may create
            # files in stands in, /proc's, where even root's write fails.
            with pytest.raises(InvalidInputError, match=r"/proc/self/out\.json: cannot write"):
                write_atomic(Path("/proc/self/out.json"), "new")
            assert not Path("/proc/self/out.json").exists()
        else:
            with pytest.raises(InvalidInputError, match="out.json: cannot write"):
                write_atomic(locked / "out.json", "new")
        assert (locked / "out.json").read_text() == "old" and os.listdir(locked) == ["out.json"]
    finally:
        os.chmod(locked, 0o700)


def test_the_output_cannot_be_one_of_the_runs_inputs(tmp_path):
    hw = tmp_path / "hw.toml"
    hw.write_text((SHIPPED_DIR / "tpu_v4.toml").read_text())
    before = hw.read_bytes()
    r = CliRunner().invoke(frontier_main, ["-H", str(hw), "--hours", "1", *SMALL, "-o", str(hw)])
    assert r.exit_code == 2 and f"{hw}: is one of this run's inputs" in r.output
    assert hw.read_bytes() == before
    # A link to the input is the input too.
    (tmp_path / "alias.toml").symlink_to(hw)
    r = CliRunner().invoke(frontier_main, ["-H", str(hw), "--hours", "1", *SMALL, "-o", str(tmp_path / "alias.toml")])
    assert r.exit_code == 2 and hw.read_bytes() == before


def test_sigterm_at_any_point_leaves_the_old_or_the_new_file_and_nothing_else(tmp_path):
    """SIGTERM (what `kill` and job schedulers send) at many points of a run that writes --output:
    the file is the old one or a complete new answer, and no temporary file is left behind. (SIGKILL
    cannot be caught: the rename keeps the target whole, and where the system links unnamed files,
    Linux O_TMPFILE, nothing is left either.)"""
    import json
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    exe = Path(sys.executable).parent / "timescale-frontier"
    out = tmp_path / "answer.json"
    args = [str(exe), "-H", "tpu_v4", "--hours", "12", "--format", "json", "--top", "3000", "-o", str(out), "-q"]
    outcomes = set()
    for delay in [0.1 * i for i in range(12)]:
        out.write_text('{"previous": true}\n')
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
        doc = json.loads(out.read_text())
        outcomes.add("previous" if doc == {"previous": True} else "new")
        assert listing_of(tmp_path) == ["answer.json"], (delay, listing_of(tmp_path))
    assert "previous" in outcomes


def listing_of(d):
    return sorted(p.name for p in d.iterdir())
