"""Sphinx helpers of the skattloc docs.

- ``skattloc-cli-help``: a directive that renders ``skattloc [COMMAND] --help`` as a
  literal block at build time, so the command-line page never drifts from the code.
- :func:`figure_scraper`: a sphinx-gallery image scraper for :class:`matplotlib.figure.Figure`
  objects that are not managed by pyplot (``skattloc.plotting`` builds its figures without
  pyplot): every new Figure left in an example's globals after a code block is shown.
"""
import os
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive


class CLIHelp(Directive):
    """``.. skattloc-cli-help:: [COMMAND]``: the help text of ``skattloc [COMMAND]``."""

    optional_arguments = 1
    has_content = False

    def run(self):
        from skattloc.cli import build_parser

        saved = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "92"  # argparse wraps to $COLUMNS
        try:
            parser = build_parser()
            if self.arguments:
                name = self.arguments[0]
                subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
                if name not in subparsers.choices:
                    raise self.error(f"unknown skattloc command {name!r}")
                parser = subparsers.choices[name]
            text = parser.format_help()
        finally:
            if saved is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = saved
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def figure_scraper(block, block_vars, gallery_conf):
    """Save the Figures first seen in the example's globals after this block."""
    from matplotlib.figure import Figure
    from sphinx_gallery.scrapers import figure_rst

    seen = block_vars.setdefault("skattloc_seen_figures", [])
    images = []
    paths = block_vars["image_path_iterator"]
    for value in list(block_vars["example_globals"].values()):
        if isinstance(value, Figure) and value.canvas.manager is None and not any(value is s for s in seen):
            seen.append(value)
            path = next(paths)
            value.savefig(path, dpi=80)
            images.append(path)
    return figure_rst(images, gallery_conf["src_dir"])


#: The report pages other parts of the project write (docs/<name>.md); the Results page
#: lists those that exist when the docs are built, so a missing one is not an error, and
#: after them any other Markdown page of docs/ that no toctree of ours names.
REPORTS = ("benchmarks", "screening", "performance", "scaling", "reliability")
#: The pages of the site's own toctrees (index.md and results.md name them).
OWN_PAGES = ("index", "getting_started", "user_guide", "cli", "results")


def _reports_toctree(app, docname, source):
    if docname != "results":
        return
    src = Path(app.srcdir)
    found = [r for r in REPORTS if (src / f"{r}.md").is_file()]
    others = sorted(p.stem for p in src.glob("*.md") if p.stem not in REPORTS + OWN_PAGES)
    source[0] = source[0].replace("SKATTLOC_REPORTS", "\n".join(found + others))


def setup(app):
    app.add_directive("skattloc-cli-help", CLIHelp)
    app.connect("source-read", _reports_toctree)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
