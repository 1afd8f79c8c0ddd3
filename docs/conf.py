"""Sphinx configuration of the skattloc documentation.

Build (warnings are errors, as in CI)::

    python -m pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

Tool choice: Sphinx + numpydoc + sphinx-gallery + myst-parser, the stack of scikit-learn's
documentation that this project follows: numpydoc renders our numpydoc docstrings,
autosummary builds the API reference from them, sphinx-gallery runs examples/plot_*.py at
build time (so the gallery cannot rot), and myst-parser lets the guides and the
benchmark/performance pages be plain Markdown that also reads well on GitHub.
"""
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # the package, when not installed

import skattloc  # noqa: E402
import torch  # noqa: E402

# The gallery scripts train small networks in this process. One intra-op thread: on a
# shared 2-core machine two threads oversubscribe and made the gallery ~10x slower here
# (8 min 46 s against 54 s for the 4 scripts). SKATTLOC_DOCS_THREADS overrides it.
torch.set_num_threads(int(os.environ.get("SKATTLOC_DOCS_THREADS", "1")))

project = "skattloc"
author = "skattloc developers"
copyright = "skattloc developers, BSD-3-Clause"
release = skattloc.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "skattloc_docs",  # docs/_ext: the CLI help directive and the Figure scraper
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "gen_modules/backreferences", "**/README.md", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# -- autodoc / autosummary / numpydoc ---------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
# Methods document themselves; an override without a docstring (e.g. the LightningModule
# hooks) is not documented with its parent's text.
autodoc_inherit_docstrings = False
autodoc_default_options = {
    # scikit-learn's generated metadata-routing setters: documented by scikit-learn.
    "exclude-members": ",".join(
        f"set_{m}_request" for m in ("fit", "score", "predict", "predict_proba", "transform", "partial_fit", "split")
    ) + ",set_output",
}
autodoc_typehints = "none"  # numpydoc sections carry the types
numpydoc_show_class_members = False  # autosummary class pages list members themselves
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- MyST ---------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3  # [text](#a-heading) links inside and across the Markdown pages

# -- sphinx-gallery -------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Only the plot_*.py scripts make up the gallery (and are run); quickstart.py and the
    # benchmark scripts in examples/ are not part of it.
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"^(?!plot_)",  # matched against the file name
    "image_scrapers": ("matplotlib", "skattloc_docs.figure_scraper"),
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "show_memory": False,
    "plot_gallery": "True",
}
# Gallery scripts run in this process: keep them on the CPU and quiet.
os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")

# -- HTML ---------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skattloc {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
