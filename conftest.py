"""Collection without the optional extras: the modules that import JAX are collected for their
doctests only when JAX is installed (the ``[calibrate]`` extra); tests that need JAX or
matplotlib skip with a reason."""

import importlib.util
import inspect
from pathlib import Path

import pytest

collect_ignore = []
if importlib.util.find_spec("jax") is None:
    collect_ignore += [
        f"python/timescale_frontier/calibrate/{m}.py" for m in ("run", "bench", "model", "collectives", "train")
    ]


def pytest_configure(config: pytest.Config) -> None:
    """Say which doctests were left out (not silently): those of the modules that need JAX."""
    if collect_ignore:
        config.issue_config_time_warning(
            pytest.PytestWarning(
                f"doctests of {len(collect_ignore)} calibrate modules not collected: JAX is not installed (the "
                "[calibrate] extra)"
            ),
            stacklevel=2,
        )


@pytest.fixture(autouse=True)
def _private_user_hardware_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test (and every process it starts) gets its own empty user hardware directory: no test
    reads or writes the real one (calibrations are written there)."""
    monkeypatch.setenv("TIMESCALE_FRONTIER_HARDWARE_DIR", str(tmp_path_factory.mktemp("user-hardware")))


# The tests whose outcome depends on the optional extras (JAX for calibration and training,
# matplotlib for plots): `make test-core` runs these (and the doctests) in a virtualenv without the
# extras, where the ones that need an extra skip with a reason and the rest must pass; the README's
# test command runs every test once with the extras installed.
EXTRAS = (
    "tests/calibration/",
    "tests/cli/test_plot.py",
    "python/timescale_frontier/",  # the doctests: the calibrate modules' need JAX
)
# Files whose tests are marked `extras` one by one (those that calibrate, plot or run the README):
# the rest of them search and render only, as the unmarked suite does, and gain nothing from a
# second run (about 25 s of test-core's 50 CPU-seconds on the 2-core CI machine).
MARKED_ONE_BY_ONE = (
    "tests/cli/test_new_user.py",
    "tests/cli/test_first_use.py",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--extras-only",
        action="store_true",
        help="collect only the files whose tests are marked extras (EXTRAS and MARKED_ONE_BY_ONE in conftest.py), as "
        "make test-core runs: the others would be imported for nothing",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``--extras-only``, a file outside EXTRAS and MARKED_ONE_BY_ONE is not collected (a folder on
    the way to one is)."""
    if not config.getoption("extras_only") or collection_path.is_dir():
        return None
    here = Path(__file__).parent
    if not collection_path.is_relative_to(here):
        return None
    # True ignores the file; None (not False) leaves the rest to pytest, collect_ignore included.
    return True if not collection_path.relative_to(here).as_posix().startswith(EXTRAS + MARKED_ONE_BY_ONE) else None


# What a test of MARKED_ONE_BY_ONE that touches an extra has in its source: an unmarked one is an error.
_TOUCHES_EXTRAS = ("importorskip(", '"calibrate"', '"plot"', "calibrate_from", "README")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if not item.path.is_relative_to(here):
            continue
        name = item.path.relative_to(here).as_posix()
        if name.startswith(EXTRAS):
            item.add_marker(pytest.mark.extras)
        elif name.startswith(MARKED_ONE_BY_ONE) and item.get_closest_marker("extras") is None:
            source = inspect.getsource(item.obj) if isinstance(item, pytest.Function) else ""
            if any(s in source for s in _TOUCHES_EXTRAS):
                raise pytest.UsageError(f"{item.nodeid} calibrates, plots or runs the README: mark it extras")
