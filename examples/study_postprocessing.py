"""Choose the weak-label event post-processing on a screening split, then re-score saved models.

Issue 19, part 1. Post-processing needs no refit: a saved model's frame scores are computed
once (cached next to the model) and every calibration variant decodes them.

Two protocols, both from clip tags only (the "weak labels only" route of ``fit``):

- ``--screen MODEL``: a model trained on folds 1-2 with fold 4 never read
  (``benchmark_labels.py --scored-fold 3 --unread 4 --save-models DIR``). Each variant is
  calibrated on the model's own validation clips (10 % of folds 1-2, their tags), as ``fit``
  does, and on each half of fold 3 (tags) to score the other half, both ways. Its event F1
  (merged references) on fold 3 is what the choice is made on.
- ``--rescore MODEL[,MODEL...]``: models trained on folds 1-3 and scored on fold 4. Each
  variant is calibrated on the model's validation clips' tags and scored on fold 4, with no
  choice made here.

Run::

    python examples/study_postprocessing.py --features-cache out/domestic_mix_logmel.npz \\
        --screen out/models/timed_0_0_fold3.skattloc --out out/pp_screen.json
    python examples/study_postprocessing.py --features-cache out/domestic_mix_logmel.npz \\
        --rescore out/models/timed_0_0_fold4.skattloc,out/models/timed_0_1_fold4.skattloc --variants previous,default
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_labels as bl  # noqa: E402  (load_data, the repository on sys.path)

#: Calibration variants: keyword arguments of EventPostprocessor.calibrate on top of the
#: previous release's calibration (``threshold_scale=1``); None: the library's defaults.
VARIANTS = {
    # the calibration of the previous release: every constant at its default, no final scaling
    "previous": {},
    # the library's defaults today (threshold_scale=0.6, chosen here)
    "default": None,
    # smoothing with its own length (a plain quantile of the detected lengths), gap unchanged
    "sq50": {"smooth_quantile": 0.5},
    "sq25": {"smooth_quantile": 0.25},
    "sq10": {"smooth_quantile": 0.1},
    # a shorter cap on the median filter (the cap the issue saw b, o and p hit)
    "cap0.5": {"median_max": 0.5},
    "cap0.25": {"median_max": 0.25},
    "mf0.25": {"median_fraction": 0.25},
    # change-point boundaries: each boundary moved to the strongest change of the score (a
    # step filter of the given width) within +-radius: (radius_s, step_s, on smoothed scores)
    "ref0.3": {"_refine": (0.3, 0.1, True)},
    "ref0.3raw": {"_refine": (0.3, 0.1, False)},
    "ref0.5": {"_refine": (0.5, 0.2, True)},
    "sq25+ref0.3": {"smooth_quantile": 0.25, "_refine": (0.3, 0.1, True)},
    # the other constants around the current point
    "dur0.2": {"duration_fraction": 0.2},
    "dur0.3": {"duration_fraction": 0.3},
    "low0.2": {"low_ratio": 0.2},
    "low0.5": {"low_ratio": 0.5},
    "gap0.5": {"gap_fraction": 0.5},
    "gap2": {"gap_fraction": 2.0},
    "bq0.8": {"background_quantile": 0.8},
    # every event threshold scaled down (strong tuning picks lower thresholds than weak)
    "thr0.7": {"threshold_scale": 0.7},
    "thr0.6": {"threshold_scale": 0.6},
    "thr0.5": {"threshold_scale": 0.5},
    "thr0.4": {"threshold_scale": 0.4},
    "thr0.3": {"threshold_scale": 0.3},
}


def _parse_model_name(path):
    """Scored fold and the folds the fit never read, from ``JOB_foldF.skattloc``."""
    fold = int(Path(path).stem.rsplit("_fold", 1)[1])
    return fold, ([4] if fold != 4 else [])


def scores_of(path, d):
    """Frame scores and clip probabilities of the model's validation clips and of its scored
    fold, cached in ``PATH.scores.npz``."""
    cache = Path(str(path) + ".scores.npz")
    fold, unread = _parse_model_name(path)
    keep = ~np.isin(d["folds"], unread)
    tr = np.flatnonzero(keep & (d["folds"] != fold))
    te = np.flatnonzero(d["folds"] == fold)
    if cache.is_file():
        z = np.load(cache)
        return {k: z[k] for k in z.files}
    from skattloc import AttLocTagger
    from skattloc.inference import frame_scores

    tagger = AttLocTagger.load(path)
    val = tr[np.asarray(tagger.validation_indices_, dtype=int)]
    out = {"val": val, "test": te}
    for key, idx in (("val", val), ("test", te)):
        frames, clip = frame_scores(tagger, d["X"][idx])
        out[f"{key}_frames"] = np.stack(frames).astype(np.float32)
        out[f"{key}_clip"] = np.asarray(clip, dtype=np.float32)
    out["hop_s"], out["offset_s"] = tagger.frame_timing_.hop_s, tagger.frame_timing_.offset_s
    np.savez_compressed(cache, **out)
    return out


def step_response(x, w):
    """d[b] = mean(x[b:b+w]) - mean(x[b-w:b]) for every frame boundary b = 0..T (edges repeated)."""
    xp = np.concatenate([np.full(w, x[0]), x, np.full(w, x[-1])])
    c = np.concatenate([[0.0], np.cumsum(xp)])
    b = np.arange(len(x) + 1) + w
    return (c[b + w] - c[b]) / w - (c[b] - c[b - w]) / w


def refine(events, frames, names, classes, timing, radius_s, step_s):
    """Move each boundary to the strongest change of the class's score within +-radius_s."""
    from skattloc.timing import as_frame_timing

    t = as_frame_timing(timing)
    index = {n: i for i, n in enumerate(names)}
    r = max(1, int(round(radius_s / t.hop_s)))
    w = max(1, int(round(step_s / t.hop_s)))
    cache, out = {}, []
    for name, on, off, label in events:
        i, k = index[name], classes.index(label)
        if (i, k) not in cache:
            x = np.asarray(frames[i][:, k], dtype=np.float64)
            cache[i, k] = (step_response(x, w), t.frame_edges(len(x)))
        dd, edges = cache[i, k]
        b0, b1 = int(np.argmin(np.abs(edges - on))), int(np.argmin(np.abs(edges - off)))
        lo, hi = max(0, b0 - r), min(len(edges) - 1, b0 + r)
        nb0 = lo + int(np.argmax(dd[lo:hi + 1]))
        lo, hi = max(0, b1 - r), min(len(edges) - 1, b1 + r)
        nb1 = lo + int(np.argmin(dd[lo:hi + 1]))
        if nb1 > nb0:
            on, off = float(edges[nb0]), float(edges[nb1])
        out.append((name, on, off, label))
    return out


def event_scores(pp, frames, clip, idx, d, timing, refine_s=None):
    from skattloc import metrics

    names = [d["filenames"][i] for i in idx]
    keep = set(names)
    merged = metrics.merge_overlapping_events([e for e in d["strong"] if e[0] in keep])
    est = pp.decode(frames, clip, names, timing=timing)
    if refine_s:
        est = refine(est, pp.smooth(frames, timing=timing) if refine_s[2] else list(frames), names, list(pp.classes),
                     timing, refine_s[0], refine_s[1])
    ev = metrics.event_based_metrics(merged, est, list(pp.classes), filenames=names)
    seg = metrics.segment_based_metrics(merged, est, list(pp.classes), filenames=names,
                                        durations={n: d.get("clip_s", bl.CLIP_S) for n in names})
    per = {c: float(v["f_measure"]) for c, v in ev["class_wise"].items()}
    return {"event_f1": float(ev["f_measure"]), "event_f1_macro": float(np.nanmean(list(per.values()))),
            "segment_f1": float(seg["f_measure"]), "per_class": per}


def calibrate(variant, frames, clip, Y, classes, timing):
    from skattloc.postprocessing import EventPostprocessor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = VARIANTS[variant]
        kw = {} if spec is None else {"threshold_scale": 1.0, **{k: v for k, v in spec.items() if not k.startswith("_")}}
        return EventPostprocessor.calibrate(frames, clip, Y, classes, timing=timing, **kw)


def screen(path, d, variants, seed=0):
    s = scores_of(path, d)
    timing = (float(s["hop_s"]), float(s["offset_s"]))
    classes = list(d["classes"])
    te = s["test"]
    rng = np.random.RandomState(seed)
    perm = rng.permutation(len(te))
    halves = [np.sort(perm[: len(te) // 2]), np.sort(perm[len(te) // 2:])]
    rows = {}
    for v in variants:
        pp = calibrate(v, s["val_frames"], s["val_clip"], d["Y"][s["val"]], classes, timing)
        ref = (VARIANTS[v] or {}).get("_refine")
        own = event_scores(pp, s["test_frames"], s["test_clip"], te, d, timing, ref)
        cross = []
        for a, b in ((0, 1), (1, 0)):
            ha, hb = halves[a], halves[b]
            pa = calibrate(v, s["test_frames"][ha], s["test_clip"][ha], d["Y"][te[ha]], classes, timing)
            cross.append(event_scores(pa, s["test_frames"][hb], s["test_clip"][hb], te[hb], d, timing, ref))
        rows[v] = {"own_val": own, "halves": {k: float(np.mean([c[k] for c in cross])) for k in ("event_f1", "event_f1_macro", "segment_f1")},
                   "halves_per_class": {c: float(np.mean([x["per_class"][c] for x in cross])) for c in classes},
                   "settings": pp.to_dict()}
        print(f"{v:28s} own-val: F1 {own['event_f1']:.3f} macro {own['event_f1_macro']:.3f} seg {own['segment_f1']:.3f} | "
              f"halves: F1 {rows[v]['halves']['event_f1']:.3f} macro {rows[v]['halves']['event_f1_macro']:.3f} | "
              + " ".join(f"{c} {own['per_class'][c]:.2f}" for c in classes), flush=True)
    return rows


def rescore(paths, d, variants):
    rows = {}
    for v in variants:
        res = []
        for path in paths:
            s = scores_of(path, d)
            timing = (float(s["hop_s"]), float(s["offset_s"]))
            pp = calibrate(v, s["val_frames"], s["val_clip"], d["Y"][s["val"]], list(d["classes"]), timing)
            res.append(event_scores(pp, s["test_frames"], s["test_clip"], s["test"], d, timing, (VARIANTS[v] or {}).get("_refine")))
        agg = {k: (float(np.mean([r[k] for r in res])), float(np.std([r[k] for r in res], ddof=1)) if len(res) > 1 else 0.0)
               for k in ("event_f1", "event_f1_macro", "segment_f1")}
        per = {c: float(np.mean([r["per_class"][c] for r in res])) for c in d["classes"]}
        rows[v] = {"models": [str(p) for p in paths], "per_model": res, "mean_sd": agg, "per_class": per}
        print(f"{v:28s} " + " ".join(f"{k} {m:.3f}±{sd:.3f}" for k, (m, sd) in agg.items()) + " | "
              + " ".join(f"{c} {x:.2f}" for c, x in per.items()), flush=True)
    return rows


BLOCK_START, BLOCK_END = "<!-- postprocessing-study:start -->", "<!-- postprocessing-study:end -->"


def write_block(page, lines):
    """Replace (or append) the marked block of ``page`` with ``lines``."""
    bl.replace_marked_block(page, BLOCK_START, BLOCK_END, lines)
    print(f"wrote {page}")


def report(results):
    """Markdown tables: per variant, event F1 on the screening fold per model, and on fold 4."""
    screen = {}
    for res in results:
        for m, rows in res.get("screen", {}).items():
            screen.setdefault(m, {}).update(rows)
    models = sorted(screen)
    variants = [v for v in VARIANTS if all(v in screen[m] for m in models)]
    lines = [f"**Screening split**: event F1 on fold 3 of {len(models)} model(s) trained on folds 1-2 (fold 4 never read).", "",
             "| variant | settings | " + " | ".join(f"model {i + 1}: own validation / halves" for i in range(len(models)))
             + " | mean (own validation) | mean (halves) | segment F1, mean (own validation) |",
             "|---|---|" + "---|" * (len(models) + 3)]
    for v in variants:
        own = [screen[m][v]["own_val"]["event_f1"] for m in models]
        halves = [screen[m][v]["halves"]["event_f1"] for m in models]
        spec = VARIANTS[v]
        kw = ("the library's defaults" if spec is None
              else ", ".join(f"{k.lstrip('_')}={val}" for k, val in spec.items()) or "the previous release's")
        lines.append(f"| {v} | {kw} | " + " | ".join(f"{a:.3f} / {b:.3f}" for a, b in zip(own, halves))
                     + f" | {np.mean(own):.3f} | {np.mean(halves):.3f} | "
                     + f"{np.mean([screen[m][v]['own_val']['segment_f1'] for m in models]):.3f} |")
    for res in results:
        if "rescore" in res:
            tags = list(next(iter(res["rescore"].values()))["per_class"])
            lines += ["", "**Fold 4, re-scored**: the same fitted models (one per seed, trained on folds 1-3), each "
                      "calibrated from its own validation clips' tags; mean ± sd over the models (ddof 1). PSDS and "
                      "EER do not depend on the thresholds and are unchanged.", "",
                      "| variant | models | event F1 (micro) | event F1 (macro) | segment F1 | " + " | ".join(tags) + " |",
                      "|---|---|---|---|---|" + "---|" * len(tags)]
            for v, r in res["rescore"].items():
                ms = r["mean_sd"]
                lines.append(f"| {v} | {len(r['models'])} | " + " | ".join(f"{ms[k][0]:.3f} ± {ms[k][1]:.3f}"
                                                                        for k in ("event_f1", "event_f1_macro", "segment_f1"))
                             + " | " + " | ".join(f"{r['per_class'][t]:.2f}" for t in tags) + " |")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--features-cache", required=True)
    p.add_argument("--screen", help="saved models scored on an inner fold (comma list)")
    p.add_argument("--rescore", help="saved models scored on fold 4 (comma list)")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--clip-duration", type=float, default=bl.CLIP_S, help="clip length in seconds (domestic-mix: 4)")
    p.add_argument("--out", help="JSON of the results")
    p.add_argument("--report", help="comma list of JSON results to turn into a markdown table (--out-md); no scoring")
    p.add_argument("--out-md", help="page to put the tables of --report into (a marked block, replaced on each run; "
                   "e.g. docs/screening.md); default: print them")
    args = p.parse_args(argv)
    if args.report:
        lines = report([json.loads(Path(f).read_text()) for f in args.report.split(",")])
        if args.out_md:
            write_block(args.out_md, lines)
        else:
            print("\n".join(lines))
        return
    d = bl.load_data(None, args.features_cache)
    d["clip_s"] = args.clip_duration
    variants = [v for v in args.variants.split(",") if v]
    out = {}
    if args.screen:
        for path in args.screen.split(","):
            print(f"== screening {path}")
            out.setdefault("screen", {})[path] = screen(path, d, variants)
    if args.rescore:
        print("== fold 4")
        out["rescore"] = rescore(args.rescore.split(","), d, variants)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
