"""The typed boundary: the hand-written stub matches the built module, the package type-checks
(mypy --strict) and lints clean (ruff)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_stub_matches_the_extension_module():
    p = _run("mypy.stubtest", "timescale_frontier._core")
    assert p.returncode == 0, p.stdout + p.stderr


def test_package_type_checks_strictly():
    p = _run("mypy")
    assert p.returncode == 0, p.stdout + p.stderr


def test_lint_is_clean():
    p = _run("ruff", "check", "python", "tests", "bench")
    assert p.returncode == 0, p.stdout + p.stderr
