"""How long Ctrl-C takes to stop a long search, on one chip and on eight: starts the CLI on a
5.5e9-configuration space (guards opened), sends SIGINT after two seconds, and prints the time
from the signal to the process's exit (exit status 130, "interrupted"). Then the same while a
long answer is being rendered (`--top 100000 --format json -o FILE`, SIGINT 4, 6 and 8 s in:
during the search's explanation and the JSON rendering), which must leave no file behind. Then
the two long paths of issue 23 U3 and U7: a search over a 1,000,000-value `seq_len` axis (every
configuration its own shape) and `fit-law`'s first fit of 10,000 runs, SIGINT 1 s in.

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
    return interrupt(args, 2.0)


def render_stop_latency(delay_s: float) -> float:
    exe = shutil.which("timescale-frontier") or sys.exit("timescale-frontier is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "top.json"
        args = [exe, "-H", "tpu_v4", "--hours", "1", "--top", "100000", "--format", "json", "-o", str(out)]
        waited = interrupt(args, delay_s)
        if list(Path(tmp).iterdir()):
            sys.exit(f"files left behind: {list(Path(tmp).iterdir())}")
    return waited


def interrupt(args: list[str], delay_s: float) -> float:
    """Seconds from SIGINT (sent ``delay_s`` after the start) to the exit of ``args``."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay_s)
    if p.poll() is not None:
        sys.exit(f"{args[0]} finished before the signal: {p.communicate()}")
    sent = time.perf_counter()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    waited = time.perf_counter() - sent
    if p.returncode != 130 or err.strip() != "interrupted":
        sys.exit(f"unexpected exit {p.returncode}: {err!r}")
    return waited


def long_seq_len_axis() -> float:
    exe = shutil.which("timescale-frontier") or sys.exit("timescale-frontier is not installed")
    args = [exe, "-H", "tpu_v4", "--hours", "1", "--d-model", "512,1024", "--n-layers", "4", "--batch-size", "8"]
    args += ["--vocab-size", "32000", "--head-dim", "64", "--kv-group", "1", "--mlp", "gelu", "--ffn-mult", "4"]
    args += ["--attention", "flash", "--tied-embeddings", "false", "--recompute", "none", "--micro-batch", "none"]
    args += ["--seq-len", "1:1000000:1", "--aspect-ratio", "1:1000", "-q"]
    return interrupt(args, 1.0)


def fit_law_10k_runs() -> float:
    import numpy as np

    exe = shutil.which("timescale") or sys.exit("timescale is not installed")
    rng = np.random.default_rng(0)
    n, d = 10 ** rng.uniform(7, 10, 10_000), 10 ** rng.uniform(9, 12, 10_000)
    loss = (1.8 + 400 / n**0.34 + 410 / d**0.28) * (1 + 0.01 * rng.uniform(-1, 1, 10_000))
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs.csv"
        runs.write_text("params,tokens,loss\n" + "".join(f"{a},{b},{c}\n" for a, b, c in zip(n, d, loss, strict=True)))
        return interrupt([exe, "fit-law", str(runs), "--bootstrap", "0", "--out", str(Path(tmp) / "l.toml")], 1.0)


if __name__ == "__main__":
    print(f"seq_len axis of 1,000,000 values: stopped {long_seq_len_axis():.3f} s after SIGINT")
    print(f"fit-law, first fit of 10,000 runs: stopped {fit_law_10k_runs():.3f} s after SIGINT")
    for chips in (1, 8):
        print(f"{chips} chip(s): stopped {stop_latency(chips):.3f} s after SIGINT (exit 130, 'interrupted')")
    for delay in (4.0, 6.0, 8.0):
        print(f"--top 100000 --format json, SIGINT {delay:g} s in: stopped {render_stop_latency(delay):.3f} s after")
