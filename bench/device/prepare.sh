#!/usr/bin/env bash
# Run HERE (not on the device), from the repository root, before a device run: builds this
# package's wheel and downloads the pure-Python dependencies the device's image lacks into .whl/
# (ignored by git; carried to the device with the run: `carry: [".whl"]`). The device has Python
# 3.12 with JAX, numpy and click, and no network (/work/.library/device/KINDS.md).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
rm -rf .whl && mkdir .whl
# abi3 (Python >= 3.11): the same wheel loads on the device's 3.12.
maturin build --release --out .whl --quiet
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_17_x86_64 -d .whl "tomlkit>=0.12" "platformdirs>=3"
ls -l .whl
du -sh .whl
