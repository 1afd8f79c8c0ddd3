"""Systems side by side on one scored fold, with seed spread and paired bootstrap intervals.

Each system is the set of its saved models, one per seed, each trained on the same folds
(``benchmark_labels.py --save-models DIR``, e.g. the default recipe, ``--param
pooling="mean"``, ``--config paper`` or ``--config desed``). Every model is scored on the
scored fold with :func:`skattloc.evaluation.evaluate_tagger` and ``bootstrap=N``:

- event settings: each model's weak calibration, redone from its own validation clips' tags
  with this library (as ``benchmark_labels.py --rescore`` does), so that every system is
  decoded by the same rules whatever release fitted it; a model fitted with an explicit
  validation set (no split) keeps its settings;
- the clips are resampled ``N`` times with replacement (PSDS: sed_scores_eval's subsets);
  the draws depend only on the clips, so they are the same for every model. Per draw the
  metric is averaged over a system's seeds: the percentiles of those means are the 95 %
  interval of the seed mean, over the sampling of the clips. The difference to the first
  system, draw by draw, gives a paired interval of the difference.

Typical use (fold 4, models trained on folds 1-3)::

    python examples/compare_systems.py --features-cache out/domestic_mix_logmel.npz \\
        --system "default=out/models/timed_0_[012]_fold4.skattloc" \\
        --system "mean=out/models/cmp_mean/*.skattloc" --system "paper=out/models/cmp_paper/*.skattloc" \\
        --bootstrap 1000 --out-json docs/comparison.json --out-md docs/benchmarks.md

The markdown block goes between ``<!-- system-comparison:start -->`` and ``...:end -->``
(``--block NAME`` for another). A system may list several globs, comma-separated.
"""
from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_labels as bl  # noqa: E402  (load_data, replace_marked_block; the repository on sys.path)
from skattloc.evaluation import percentile_interval  # noqa: E402  (after benchmark_labels: the repository on sys.path)

METRICS = ("eer_macro", "event_f1", "event_f1_macro", "segment_f1", "psds1", "psds2")


def _fold_of(path):
    return int(Path(path).stem.rsplit("_fold", 1)[1])


def score_model(path, d, bootstrap, clip_s):
    """The scores of one saved model on its scored fold (the fold its name ends with),
    cached beside the model in ``PATH.compare-B.json`` (B: the resamples); a cache older
    than the model is recomputed."""
    cache = Path(f"{path}.compare-{bootstrap}.json")
    if cache.is_file() and cache.stat().st_mtime >= Path(path).stat().st_mtime:
        row = json.loads(cache.read_text())
        row["resamples"] = {k: np.asarray(v, dtype=np.float64) for k, v in row["resamples"].items()}
        return row
    row = _score_model(path, d, bootstrap, clip_s)
    cache.write_text(json.dumps({**row, "resamples": {k: v.tolist() for k, v in row["resamples"].items()}}))
    return row


def _score_model(path, d, bootstrap, clip_s):
    from skattloc import AttLocTagger
    from skattloc.evaluation import evaluate_tagger

    fold = _fold_of(path)
    unread = [] if fold == 4 else [4]  # a screening model (an inner fold scored) never read fold 4
    tr = np.flatnonzero(~np.isin(d["folds"], [fold, *unread]))  # its training clips, as benchmark_labels.py took them
    te = np.flatnonzero(d["folds"] == fold)
    tagger = AttLocTagger.load(path)
    val = np.asarray(tagger.validation_indices_, dtype=int)
    recalibrated = len(val) > 0
    if recalibrated:
        bl.recalibrate_weak(tagger, d["X"][tr[val]], d["Y"][tr[val]])
    names = [d["filenames"][i] for i in te]
    keep = set(names)
    ref = [e for e in d["strong"] if e[0] in keep]
    report = evaluate_tagger(tagger, d["X"][te], d["Y"][te], reference=ref, filenames=names, clip_duration=clip_s,
                             bootstrap=bootstrap, random_state=0)
    point = {"eer_macro": report.eer_macro, "event_f1": report.event["f_measure"],
             "event_f1_macro": report.event["class_wise_average"]["f_measure"],
             "event_f1_raw": report.event_raw["f_measure"], "segment_f1": report.segment["f_measure"],
             "psds1": report.psds1, "psds2": report.psds2}
    per_tag = {c: report.event["class_wise"][c]["f_measure"] for c in report.classes}
    return {"path": str(path), "fold": fold, "recalibrated": recalibrated, "n_epochs": int(tagger.n_epochs_),
            "point": point, "per_tag": per_tag, "resamples": {k: report.resamples[k] for k in METRICS if k in report.resamples}}



def summarize(systems):
    """Per system: seed mean ± sd, the seed mean's interval, and the paired difference to the first."""
    out, first = {}, None
    for name, models in systems.items():
        row = {"n_models": len(models), "models": [m["path"] for m in models],
               "n_epochs": [m["n_epochs"] for m in models], "metrics": {},
               "per_tag": {c: float(np.mean([m["per_tag"][c] for m in models])) for c in models[0]["per_tag"]}}
        means = {}
        for k in (*METRICS, "event_f1_raw"):
            vals = np.array([m["point"][k] for m in models], dtype=np.float64)
            entry = {"mean": float(np.mean(vals)), "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                     "seeds": vals.tolist()}
            if all(k in m["resamples"] for m in models):
                means[k] = np.mean([m["resamples"][k] for m in models], axis=0)
                entry["ci"] = percentile_interval(means[k])
            row["metrics"][k] = entry
        if first is None:
            first = means
        else:
            row["diff_to_first"] = {k: {"ci": percentile_interval(means[k] - first[k])} for k in means if k in first}
        out[name] = row
    return out


def _fmt_ci(e):
    lo, hi = e.get("ci", (float("nan"), float("nan")))
    return f"{e['mean']:.3f} ± {e['sd']:.3f} [{lo:.3f}, {hi:.3f}]"


def markdown(summary, bootstrap, fold, commands, title=None):
    names = list(summary)
    tags = list(next(iter(summary.values()))["per_tag"])
    n_seeds = sorted({r["n_models"] for r in summary.values()})
    if fold == 4:
        protocol = (f"trained on folds 1-3 with the same protocol (the fit's own 10 % validation split sets early "
                    f"stopping and the weak event calibration; nothing is chosen on fold 4)")
    else:
        protocol = (f"trained on the other inner folds, fold 4 never read: a screening split, where a choice "
                    f"is made, so these figures are not a test result")
    lines = [f"### {title or f'Systems side by side on fold {fold}'}", "",
             f"Written by `examples/compare_systems.py`. Each system: {' or '.join(map(str, n_seeds))} models (one per "
             f"seed), {protocol}. Cells: mean ± sd over the seeds (ddof 1) "
             f"[95 % interval of the seed mean over {bootstrap} bootstrap resamples of the clips; PSDS: "
             f"sed_scores_eval's leave-a-fifth-out subsets]. Event F1 against the merged reference; the headline.",
             "", "| system | models | epochs | macro EER | event F1 (micro) | event F1 (macro) | segment F1 | PSDS1 | PSDS2 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for n in names:
        r = summary[n]
        lines.append(f"| {n} | {r['n_models']} | {', '.join(map(str, r['n_epochs']))} | "
                     + " | ".join(_fmt_ci(r["metrics"][k]) for k in METRICS) + " |")
    if len(names) > 1:
        lines += ["", f"Paired difference to `{names[0]}` (the same resamples of the clips; an interval that "
                  "excludes 0 is a difference the clip sampling does not explain):", "",
                  "| system | macro EER | event F1 (micro) | event F1 (macro) | segment F1 | PSDS1 | PSDS2 |",
                  "|---|---|---|---|---|---|---|"]
        for n in names[1:]:
            r = summary[n]
            cells = []
            for k in METRICS:
                d = r["metrics"][k]["mean"] - summary[names[0]]["metrics"][k]["mean"]
                lo, hi = r.get("diff_to_first", {}).get(k, {}).get("ci", (float("nan"),) * 2)
                cells.append(f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]")
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", "Event F1 per tag (merged reference, mean over the seeds):", "",
              "| system | " + " | ".join(tags) + " | against the raw reference (micro) |",
              "|---|" + "---|" * (len(tags) + 1)]
    for n in names:
        r = summary[n]
        lines.append(f"| {n} | " + " | ".join(f"{r['per_tag'][t]:.2f}" for t in tags)
                     + f" | {r['metrics']['event_f1_raw']['mean']:.3f} |")
    lines += ["", "Reproduce:", "", "```bash", *commands, "```"]
    return lines


def parse_system(text):
    """``NAME=GLOB[,GLOB...]`` -> (name, the sorted model files)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=GLOB, got {text!r}")
    name, patterns = text.split("=", 1)
    paths = sorted({p for pattern in patterns.split(",") for p in glob.glob(pattern)})
    if not paths:
        raise argparse.ArgumentTypeError(f"{name}: no model file matches {patterns!r}")
    return name, paths


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("path", nargs="?", help="the data folder (not needed when --features-cache exists)")
    p.add_argument("--features-cache", required=True)
    p.add_argument("--system", type=parse_system, action="append", required=True, metavar="NAME=GLOB",
                   help="a system and its saved models (one per seed); the first is the reference of the differences")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples of the clips (default 1000)")
    p.add_argument("--clip-duration", type=float, default=bl.CLIP_S, help="clip length in seconds (domestic-mix: 4)")
    p.add_argument("--out-json")
    p.add_argument("--out-md", help="a page whose marked block gets the tables (appended if it has none)")
    p.add_argument("--block", default="system-comparison",
                   help="name of the page's marked block (<!-- NAME:start --> ... <!-- NAME:end -->)")
    p.add_argument("--title", help="the block's heading (default: Systems side by side on fold F)")
    p.add_argument("--command", action="append", default=[],
                   help="a command line that made the models, for the page's Reproduce block (repeatable)")
    args = p.parse_args(argv)
    if args.bootstrap < 1:
        p.error("--bootstrap must be at least 1")
    d = bl.load_data(args.path, args.features_cache)
    systems = {}
    for name, paths in args.system:
        folds = {_fold_of(x) for x in paths}
        if len(folds) != 1:
            sys.exit(f"error: {name}: the models score different folds {sorted(folds)}; compare one fold at a time")
        models = []
        for path in paths:
            t0 = time.perf_counter()
            models.append(score_model(path, d, args.bootstrap, args.clip_duration))
            pt = models[-1]["point"]
            print(f"{name} {Path(path).name}: EER {pt['eer_macro']:.3f}, event F1 {pt['event_f1']:.3f}, "
                  f"PSDS1 {pt['psds1']:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
        systems[name] = models
    folds = {m["fold"] for ms in systems.values() for m in ms}
    if len(folds) != 1:
        sys.exit(f"error: the systems score different folds {sorted(folds)}")
    summary = summarize(systems)
    for n, r in summary.items():
        print(f"{n:10s} " + " ".join(f"{k} {_fmt_ci(r['metrics'][k])}" for k in METRICS), flush=True)
    if args.out_json:
        Path(args.out_json).write_text(json.dumps({"bootstrap": args.bootstrap, "fold": folds.pop() if folds else None,
                                                   "systems": summary}, indent=1) + "\n")
        print(f"wrote {args.out_json}")
    if args.out_md:
        fold = next(iter(systems.values()))[0]["fold"]
        commands = args.command or [" ".join(["python", "examples/compare_systems.py", *(argv or sys.argv[1:])])]
        bl.replace_marked_block(args.out_md, f"<!-- {args.block}:start -->", f"<!-- {args.block}:end -->",
                                markdown(summary, args.bootstrap, fold, commands, args.title))
        print(f"wrote {args.out_md}")


if __name__ == "__main__":
    main()
