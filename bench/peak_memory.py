"""Peak resident memory of one search, measured in a fresh process (ru_maxrss).

    python bench/peak_memory.py 100M [CHIPS]
prints the search's configuration count, time and the process's peak RSS, and the RSS of the same
process before the search (interpreter + numpy + the module). SIZE: 1M, 10M, 100M or 1G; CHIPS:
1 (default) or more (every sharding of each configuration)."""

import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from workloads import HARDWARE, HOURS, space_axes  # noqa: E402

from timescale_frontier import Hardware, make_space, search  # noqa: E402


def main() -> None:
    size = sys.argv[1] if len(sys.argv) > 1 else "100M"
    chips = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    hw = Hardware.load(HARDWARE)
    space = make_space(space_axes(size))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    r = search(hw, HOURS, space, top_k=10, chips=chips)
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{size}, {chips} chip(s): {r.evaluated:,} configs, {r.feasible:,} feasible, {elapsed:.3f} s "
        f"({r.evaluated / elapsed / 1e6:.0f} M configs/s), peak RSS {peak:.0f} MiB (before search {before:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
