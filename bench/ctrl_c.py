"""How long Ctrl-C takes to stop a long search, on one chip and on eight: starts the CLI on a
5.5e9-configuration space (guards opened), sends SIGINT after two seconds, and prints the time
from the signal to the process's exit (exit status 130, "interrupted"). Then the same while a
long answer is being rendered (`--top 100000 --format json -o FILE`, SIGINT 4, 6 and 8 s in:
during the search's explanation and the JSON rendering), which must leave no file behind.

    python bench/ctrl_c.py
"""

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def stop_latency(chips: int) -> float:
    exe = shutil.which("timescale-frontier") or sys.exit("timescale-frontier is not installed")
    args = [exe, "-H", "tpu_v4", "--hours", "12", "--d-model", "64:65536:64", "--n-layers", "1:3000:1"]
    args += [
        "--aspect-ratio",
        "0.0001:1e9",
        "--recompute",
        "none",
        "--micro-batch",
        "none",
        "--chips",
        str(chips),
        "-q",
    ]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    if p.poll() is not None:
        sys.exit(f"the search finished before the signal: {p.communicate()}")
    sent = time.perf_counter()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    waited = time.perf_counter() - sent
    if p.returncode != 130 or err.strip() != "interrupted":
        sys.exit(f"unexpected exit {p.returncode}: {err!r}")
    return waited


def render_stop_latency(delay_s: float) -> float:
    exe = shutil.which("timescale-frontier") or sys.exit("timescale-frontier is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "top.json"
        args = [exe, "-H", "tpu_v4", "--hours", "1", "--top", "100000", "--format", "json", "-o", str(out)]
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay_s)
        if p.poll() is not None:
            sys.exit(f"the render finished before the signal: {p.communicate()}")
        sent = time.perf_counter()
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        waited = time.perf_counter() - sent
        if p.returncode != 130 or err.strip() != "interrupted" or list(Path(tmp).iterdir()):
            sys.exit(f"unexpected exit {p.returncode}: {err!r}, files {list(Path(tmp).iterdir())}")
    return waited


if __name__ == "__main__":
    for chips in (1, 8):
        print(f"{chips} chip(s): stopped {stop_latency(chips):.3f} s after SIGINT (exit 130, 'interrupted')")
    for delay in (4.0, 6.0, 8.0):
        print(f"--top 100000 --format json, SIGINT {delay:g} s in: stopped {render_stop_latency(delay):.3f} s after")
