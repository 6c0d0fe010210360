"""Ctrl-C at a random moment of a short command's life, teardown included: starts `timescale
hardware list` again and again for SECONDS (default 150), sends SIGINT at a uniform random delay
of 0-0.5 s after the package is loaded, and counts the outcomes. Every one must be exit 0 with
the whole answer and nothing on stderr, or exit 130 with exactly "interrupted". Run it beside a
busy loop (`( while :; do :; done ) &`) to reproduce a loaded CI machine.

    python bench/ctrl_c_any_moment.py [SECONDS]
"""

import collections
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


def wait_until_loaded(p: subprocess.Popen[str]) -> None:
    maps = Path(f"/proc/{p.pid}/maps")
    while p.poll() is None:
        try:
            if "_core" in maps.read_text():
                return
        except OSError:
            return
        time.sleep(0.002)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 150.0
    exe = shutil.which("timescale") or sys.exit("timescale is not installed")
    outcomes: collections.Counter[str] = collections.Counter()
    bad = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        p = subprocess.Popen([exe, "hardware", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until_loaded(p)
        time.sleep(random.uniform(0.0, 0.5))
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        if p.returncode == 0 and err == "" and out.startswith(" ") and "name" in out.splitlines()[0]:
            outcomes["finished (exit 0)"] += 1
        elif p.returncode == 130 and err.strip() == "interrupted":
            outcomes["interrupted (exit 130)"] += 1
        else:
            outcomes[f"WRONG: exit {p.returncode}"] += 1
            bad.append((p.returncode, err[-200:]))
    print(f"{sum(outcomes.values())} tries: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    for rc, err in bad[:5]:
        print(f"  exit {rc}: {err!r}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
