# Targets are exactly what CI and the benchmarks run.
.PHONY: test bench lint
test:
	pip install -e ".[test]" && cargo test -p timescale-core && pytest --benchmark-disable
lint:
	cargo clippy --all-targets -- -D warnings && ruff check python tests bench && mypy && python -m mypy.stubtest timescale_frontier._core
bench:
	bash bench/run.sh
