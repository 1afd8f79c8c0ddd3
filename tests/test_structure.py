"""The package's layout (issue 12): no import circles, an import that costs no torch, and one
rule per parameter.

- The import graph of ``skattloc/`` (every ``import`` statement, at module level or inside
  a function, and the names ``skattloc/__init__.py`` loads lazily) has no circle.
- ``import skattloc``, ``import skattloc.metrics``, ``import skattloc.features`` and
  ``skattloc --help`` load neither torch nor Lightning (checked in fresh processes).
- Every ``AttLocTagger`` parameter has an entry in the validation table.
"""
import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import skattloc

PACKAGE = Path(skattloc.__file__).resolve().parent
HEAVY = ("torch", "lightning", "pytorch_lightning", "lightning_fabric")
TIMEOUT = 300


def _module_names():
    return {
        ("skattloc" if p.stem == "__init__" else f"skattloc.{p.stem}"): p
        for p in PACKAGE.glob("*.py")
    }


class _Imports(ast.NodeVisitor):
    """The skattloc modules that a module imports anywhere in its code (functions included),
    leaving out ``if TYPE_CHECKING:`` blocks, which never run."""

    def __init__(self, name, modules):
        self.package = "skattloc"
        self.name = name
        self.modules = modules
        self.found = set()

    def _add(self, target):
        if target in self.modules and target != self.name:
            self.found.add(target)

    def visit_If(self, node):
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node):
        for alias in node.names:
            if alias.name == self.package or alias.name.startswith(self.package + "."):
                self._add(alias.name)

    def visit_ImportFrom(self, node):
        if node.level:
            base = self.package  # every module is directly in the package (no subpackages)
            base = f"{base}.{node.module}" if node.module else base
        else:
            base = node.module or ""
            if base != self.package and not base.startswith(self.package + "."):
                return
        if base == self.package:
            for alias in node.names:  # `from . import data`: the submodule, else the package
                sub = f"{base}.{alias.name}"
                self._add(sub if sub in self.modules else base)
        else:
            self._add(base)

    def visit_Call(self, node):  # importlib.import_module("skattloc.x") with a constant name
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "import_module" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                self._add(arg.value if not arg.value.startswith(".") else f"{self.package}{arg.value}")
        self.generic_visit(node)


def import_graph():
    modules = _module_names()
    graph = {}
    for name, path in modules.items():
        visitor = _Imports(name, modules)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        graph[name] = visitor.found
    # What the package's __getattr__ imports when a top-level name is used.
    graph["skattloc"] |= {f"skattloc.{m}" for m in skattloc._EXPORTS.values()}
    return graph


def find_cycle(graph):
    """One import circle as a list of modules (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_import_graph_has_no_circle():
    graph = import_graph()
    assert "skattloc.estimator" in graph["skattloc.cli"]  # the walk sees function-level imports
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_shared_checks_import_nothing_from_skattloc():
    graph = import_graph()
    assert graph["skattloc._checks"] == set()
    assert graph["skattloc.tags"] == set()
    # No module but the package's own entry points imports the package root (it would
    # close a circle through the lazily loaded names).
    assert not [m for m, deps in graph.items() if "skattloc" in deps and m != "skattloc.__main__"]


def _run(code, env=None):
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT,
        env={**os.environ, **(env or {})}, cwd=PACKAGE.parent,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize(
    "statement",
    [
        "import skattloc",
        "import skattloc.metrics",
        "import skattloc.features",
        "import skattloc.events, skattloc.datasets, skattloc.tags",
        "from skattloc import AttLocTagger, LogMelExtractor, load_weak_dataset; AttLocTagger().get_params()",
        # checking parameters (the table's rules, its option lists) needs no torch
        "from skattloc import AttLocTagger; AttLocTagger(pooling='mean', callbacks=None)._validate_params()",
        "from skattloc.params import choices, validate_params; validate_params({'pooling': choices('pooling')[0]})",
    ],
)
def test_imports_load_no_torch_or_lightning(statement):
    code = f"import sys\n{statement}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    assert _run(code).stdout.strip() == "", f"{statement!r} imported torch or Lightning"


def _imported_modules(importtime_stderr):
    """Module names in ``python -X importtime`` output."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def test_help_loads_no_torch_or_lightning():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "skattloc", "--help"], capture_output=True, text=True,
        timeout=TIMEOUT, cwd=PACKAGE.parent,
    )
    assert proc.returncode == 0 and "usage: skattloc" in proc.stdout, proc.stderr
    imported = _imported_modules(proc.stderr)
    assert "skattloc.cli" in imported and "skattloc.estimator" in imported
    assert not [m for m in imported if m.split(".")[0] in HEAVY]
    script = shutil.which("skattloc", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("the skattloc console script is not installed (pip install -e .)")
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=TIMEOUT,
                          env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert proc.returncode == 0, proc.stderr
    assert not [m for m in _imported_modules(proc.stderr) if m.split(".")[0] in HEAVY]


def test_lazy_names_and_submodules_resolve():
    for name in skattloc.__all__:
        assert getattr(skattloc, name) is not None
    assert skattloc.metrics.equal_error_rate is not None and "AttLocTagger" in dir(skattloc)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        skattloc.no_such_name  # noqa: B018


def test_every_parameter_has_a_validation_rule():
    from skattloc import AttLocTagger
    from skattloc.params import PARAMETERS

    assert set(PARAMETERS) == set(AttLocTagger().get_params(deep=False))
