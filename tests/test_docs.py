"""Every docstring example in the package runs and prints what it shows (doctest).

One test per module of ``skattloc``, so a failure names the module; the same check as
``pytest --doctest-modules skattloc``. Examples marked ``# doctest: +SKIP`` (slow ONNX
export) are not run. Also checks that the gallery scripts and docs pages the docs build
needs are in place (the build itself, ``python -m sphinx -W ...``, runs in CI).
"""
import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest

import skattloc

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    m.name for m in pkgutil.walk_packages(skattloc.__path__, prefix="skattloc.") if m.name != "skattloc.__main__"
)


@pytest.mark.parametrize("name", ["skattloc"] + MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    # DocTestFinder keeps the module's own objects: re-exports are tested at home.
    tests = [t for t in finder.find(module, name, globs={}) if t.examples]
    failures = []
    state = np.random.get_state()
    for test in tests:
        runner.run(test, out=failures.append, clear_globs=True)
    np.random.set_state(state)
    assert not failures, "".join(failures)


def test_public_objects_have_examples():
    """Every public function and class exported at the top level shows an example."""
    missing = []
    for attr in skattloc.__all__:
        obj = getattr(skattloc, attr)
        if not callable(obj) or (isinstance(obj, type) and issubclass(obj, Exception)):
            continue
        if ">>>" not in (obj.__doc__ or ""):
            missing.append(attr)
    assert not missing, f"public objects without a docstring example: {missing}"


def test_gallery_scripts_have_a_title_and_run_on_synthetic_data():
    scripts = sorted((ROOT / "examples").glob("plot_*.py"))
    assert len(scripts) >= 3
    for script in scripts:
        text = script.read_text()
        head = re.match(r'^"""\n(?:=+\n)?(.+)\n(=+)\n', text)  # an RST title, optional overline
        assert head and len(head.group(2)) >= len(head.group(1)), script.name
        assert "make_weak_events" in text, f"{script.name} should run on synthetic data"


def test_docs_pages_and_api_reference_exist():
    docs = ROOT / "docs"
    if not (docs / "conf.py").is_file():
        pytest.skip("no docs/ folder in this checkout")
    for page in ("index.md", "getting_started.md", "user_guide.md", "cli.md", "api.rst", "results.md"):
        assert (docs / page).is_file(), page
    api = (docs / "api.rst").read_text()
    for name in ("AttLocTagger", "LogMelExtractor", "make_weak_events", "equal_error_rate", "frames_to_events"):
        assert name in api
