#!/usr/bin/env bash
# Reproduces the figures in bench/RESULTS.md (run inside the project's virtualenv, after
# `pip install -e ".[test]"`): the pytest-benchmark suite (Rust core vs NumPy, same run), the peak
# memory of 1M/10M/100M/1G searches (1G also on 8 chips), how fast Ctrl-C stops a search, and the
# criterion benches of the same workloads.
set -euo pipefail
cd "$(dirname "$0")/.."
pytest bench --benchmark-only --benchmark-columns=min,median,max,rounds --benchmark-sort=name -q -p no:cacheprovider
for size in 1M 10M 100M 1G; do python bench/peak_memory.py "$size"; done
python bench/peak_memory.py 1G 8
python bench/ctrl_c.py
if [ "${CRITERION:-1}" = 1 ]; then cargo bench -p timescale-bench --bench search 2>&1 | grep -B1 "time:" | grep -v -E "^--|^Benchmarking"; fi
