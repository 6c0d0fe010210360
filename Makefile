# Targets are exactly what CI (.ci/run) runs: `make test` is the README's test command, `make lint`
# every static check. `make format` rewrites in place; `make bench` records bench/RESULTS.md figures.
PY_SRC = python tests bench experiments conftest.py
.PHONY: format lint test test-fast test-core bench

format:
	cargo fmt --all
	ruff format $(PY_SRC)
	ruff check --fix $(PY_SRC)

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	ruff format --check $(PY_SRC)
	ruff check $(PY_SRC)
	mypy
	python -m mypy.stubtest timescale_frontier._core

test:
	python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" && cargo test -p timescale-core && pytest --benchmark-disable -n auto --maxprocesses 4 --dist worksteal

# The developer loop: a build without fat LTO (about 30 s instead of minutes) and the suite without
# the tests marked slow (live calibration, experiments, the answer sweep). CI runs `make test`.
test-fast:
	CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 maturin develop --release
	cargo test -p timescale-core
	pytest --benchmark-disable -n auto --maxprocesses 4 --dist worksteal -m "not slow"

# Without the optional extras (JAX, matplotlib): the tests whose outcome depends on them (marked
# `extras` in conftest.py: calibration, plots, the README's code, the doctests) must pass or
# skip with a reason. The rest do not touch the extras and ran in `make test`; the slow ones need JAX.
# The extension is not rebuilt: it is abi3, so this virtualenv reuses `make test`'s build.
# `--extras-only` (conftest.py) collects only the files under EXTRAS and MARKED_ONE_BY_ONE (the rest
# cannot be selected); a collection of the whole suite first checks that every test module imports
# without the extras.
test-core:
	python3 -m venv .venv-core && . .venv-core/bin/activate && pip install -e ".[test-core]" && pytest --collect-only -q > .venv-core/collect.log || (tail -30 .venv-core/collect.log; false)
	. .venv-core/bin/activate && pytest --benchmark-disable -n auto --maxprocesses 4 --dist worksteal --extras-only -m "extras and not slow"

bench:
	bash bench/run.sh
