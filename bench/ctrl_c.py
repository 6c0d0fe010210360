"""How long Ctrl-C takes to stop a long search, on one chip and on eight: starts the CLI on a
5.5e9-configuration space (guards opened), sends SIGINT after two seconds, and prints the time
from the signal to the process's exit (exit status 130, "interrupted").

    python bench/ctrl_c.py
"""

import shutil
import signal
import subprocess
import sys
import time


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


if __name__ == "__main__":
    for chips in (1, 8):
        print(f"{chips} chip(s): stopped {stop_latency(chips):.3f} s after SIGINT (exit 130, 'interrupted')")
