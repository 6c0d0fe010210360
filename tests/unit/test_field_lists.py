"""One architecture field list (issue 22): the core's `Architecture` (its `to_dict`) is the list;
every other place that names the fields is checked against it, so adding a field fails here until
each place has it: the typed stub, the column names `evaluate` takes, the core's column struct,
and the search-space axes that are architecture fields."""

import ast
import inspect
import re
from pathlib import Path

import pytest

from timescale_frontier import Architecture, evaluate
from timescale_frontier.architecture import FIELDS
from timescale_frontier.metrics import _CATEGORICAL, _FLOAT, _INT

ROOT = Path(__file__).resolve().parents[2]


def test_the_stub_takes_every_field():
    tree = ast.parse((ROOT / "python" / "timescale_frontier" / "_core.pyi").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Architecture")
    new = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__new__")
    args = [a.arg for a in new.args.args + new.args.kwonlyargs if a.arg not in ("cls",)]
    assert sorted(args) == sorted(FIELDS), set(args) ^ set(FIELDS)
    # The runtime class takes the same keywords (the stub's are checked by stubtest too).
    Architecture(**Architecture(64, 1, 1).to_dict())


def test_evaluate_takes_every_field_as_a_column():
    assert sorted((*_INT, *_CATEGORICAL, *_FLOAT, "tied_embeddings")) == sorted(FIELDS)
    assert "columns" in inspect.signature(evaluate).parameters


def test_the_cores_columns_are_the_fields():
    text = (ROOT / "rust" / "core" / "src" / "metrics.rs").read_text()
    body = text[text.index("pub struct ArchitectureColumns") :]
    body = body[: body.index("\n}")]
    columns = re.findall(r"pub (\w+): Column<", body)
    assert sorted(columns) == sorted(FIELDS), set(columns) ^ set(FIELDS)


def test_no_module_is_shadowed_by_a_function_it_exports():
    # Issue 22: `import timescale_frontier.search as S` gave the function; the modules are named
    # apart from the functions the package exports (frontier.search, prediction.predict).
    import importlib
    import inspect

    import timescale_frontier as tf

    for name in tf.__all__:
        value = getattr(tf, name)
        if inspect.isfunction(value):
            with pytest.raises(ModuleNotFoundError):
                importlib.import_module(f"timescale_frontier.{name}")
    assert inspect.ismodule(importlib.import_module("timescale_frontier.frontier"))
