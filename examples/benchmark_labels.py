"""Learning curves of every kind of label (issue 18) on domestic-mix: event times for a share
of the training clips, and tags for a share with the rest unlabeled (with and without the
mean teacher).

Protocol: fold 4 is scored by models trained on folds 1-3 (fold 4 was never read while the
default recipe was chosen). Inside each fit, ``AttLocTagger``'s own validation split (10 %
of the tagged and 10 % of the timed clips, drawn separately; unlabeled clips always train)
drives early stopping and the event settings: weak calibration on the validation clips'
tags, then strong tuning on the timed validation clips' event times when there are some.
Nothing is chosen on fold 4. The shares of clips given times or tags are drawn per seed.

Each job is one fit; results go to a JSON-lines file, so a killed run resumes where it
stopped. ``--report`` writes ``docs/label_curves.md``, ``docs/label_curves.json`` and
``docs/images/label_curves.png``, and puts the tables and the plot into ``docs/benchmarks.md``
(between ``<!-- label-curves -->`` markers).

Run (two jobs side by side on two cores, one torch thread each)::

    OMP_NUM_THREADS=1 python examples/benchmark_labels.py ../shared/data/domestic-mix \\
        --features-cache out/domestic_mix_logmel.npz --results out/label_curves.jsonl \\
        --jobs timed:0.10:0,tagged:0.25:mt:0,tagged:0.25:none:0
    python examples/benchmark_labels.py --results out/label_curves.jsonl --report

Screening (choosing a setting, e.g. ``teacher_decay``, without fold 4): train on folds 1-2,
score fold 3, to a results file of its own::

    OMP_NUM_THREADS=1 python examples/benchmark_labels.py --features-cache out/domestic_mix_logmel.npz \\
        --results out/screen_teacher.jsonl --scored-fold 3 --unread 4 --param teacher_decay=0.99 \\
        --jobs tagged:0.25:mt:0

Job names: ``timed:SHARE:SEED`` (event times for SHARE of the training clips, tags for the
rest; ``timed:0:SEED`` is tags alone), ``tagged:SHARE:mt|none:SEED`` (tags for SHARE, the
rest unlabeled with the mean teacher, or left out).
"""
import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

FOLD_SCORED = 4
CLIP_S = 4.0  # domestic-mix's clip length, seconds (--clip-duration)
DOCS = Path(__file__).resolve().parent.parent / "docs"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_data(path, cache):
    """Log-mel features (cached as float16), tags, folds, file names and event times."""
    from skattloc import LogMelExtractor, load_weak_dataset

    ext = LogMelExtractor()
    if cache is not None and Path(cache).is_file():
        z = np.load(cache, allow_pickle=False)
        strong = list(zip(z["strong_file"].tolist(), z["strong_onset"].tolist(), z["strong_offset"].tolist(),
                          z["strong_label"].tolist()))
        return dict(X=z["X"].astype(np.float32), Y=z["Y"].astype(np.int64), classes=z["classes"].tolist(),
                    folds=z["folds"].astype(np.int64), filenames=z["filenames"].tolist(), strong=strong, ext=ext)
    if path is None:
        sys.exit("error: give the data folder (no features cache yet)")
    data = load_weak_dataset(path)
    keep = np.flatnonzero(data.folds > 0)
    X = np.asarray(LogMelExtractor(n_jobs=2, verbose=True).fit_transform([data.paths[i] for i in keep]), dtype=np.float32)
    names = [data.filenames[i] for i in keep]
    strong = [e for e in data.strong if e[0] in set(names)]
    d = dict(X=X, Y=np.asarray(data.Y)[keep].astype(np.int64), classes=list(data.classes), folds=data.folds[keep],
             filenames=names, strong=strong, ext=ext)
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, X=X.astype(np.float16), Y=d["Y"].astype(np.int8), classes=np.array(d["classes"]),
                            folds=d["folds"].astype(np.int8), filenames=np.array(names),
                            strong_file=np.array([e[0] for e in strong]),
                            strong_onset=np.array([e[1] for e in strong]), strong_offset=np.array([e[2] for e in strong]),
                            strong_label=np.array([e[3] for e in strong]))
    return d


def recalibrate_weak(tagger, X, y):
    """Redo the weak event calibration of ``tagger`` from the clip tags ``y`` of ``X`` (its
    own validation clips), quietly: a tag absent from them keeps its defaults."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tagger.tune_events(X, y)


def score(tagger, d, te, val_X, val_Y, timed_tuned):
    """Fold-4 metrics of a fitted tagger, with its own event settings and (for timed runs)
    with weak-only settings recalibrated on its validation clips' tags."""
    from skattloc import metrics
    from skattloc.sed_scores import psds

    X, names = d["X"][te], [d["filenames"][i] for i in te]
    keep = set(names)
    ref = [e for e in d["strong"] if e[0] in keep]
    merged = metrics.merge_overlapping_events(ref)
    classes = list(tagger.classes_)
    durations = [d.get("clip_s", CLIP_S)] * len(names)
    proba = tagger.predict_proba(X)
    row = {"eer": float(metrics.equal_error_rate(d["Y"][te], proba, average="macro"))}

    def events_block(prefix):
        est = tagger.detect_events(X, filenames=names)
        ev_raw = metrics.event_based_metrics(ref, est, classes, filenames=names)
        ev = metrics.event_based_metrics(merged, est, classes, filenames=names)
        seg = metrics.segment_based_metrics(merged, est, classes, filenames=names, durations=dict(zip(names, durations)))
        row.update({f"{prefix}event_f1": ev["f_measure"], f"{prefix}event_f1_raw": ev_raw["f_measure"],
                    f"{prefix}event_f1_macro": float(np.nanmean([c["f_measure"] for c in ev["class_wise"].values()])),
                    f"{prefix}segment_f1": seg["f_measure"]})

    events_block("")
    scores = tagger.event_scores(X)
    row["psds1"] = float(psds(merged, list(scores), classes, names, durations, 1, timing=tagger.frame_timing_))
    row["psds2"] = float(psds(merged, list(scores), classes, names, durations, 2, timing=tagger.frame_timing_))
    row["event_settings_source"] = tagger.event_settings_["source"]
    if timed_tuned:  # the same model with weak-only event settings
        recalibrate_weak(tagger, val_X, val_Y)
        events_block("weak_")
    return row


def _configs():
    from skattloc import DESED_CONFIG, PAPER_CONFIG

    # The paper's configuration has no validation split; the benchmark gives it the same 10 %
    # one as the others, for the weak event calibration (it still trains its 20 epochs).
    return {"paper": dict(PAPER_CONFIG, validation_fraction=0.1), "desed": dict(DESED_CONFIG)}


#: Parameter sets a job can start from (``--config``; :func:`_configs`).
CONFIG_NAMES = ("desed", "paper")


def run_job(job, d, results, max_epochs=None, scored_fold=FOLD_SCORED, unread=(), overrides=None, save_models=None,
            rescore=False, val_fold=None, config=None):
    """One fit and its scores. Screening runs pass ``scored_fold`` (an inner validation
    fold), the folds never to read (``unread``: the outer fold 4) and parameter
    ``overrides``; the curves' report leaves such rows out.

    ``rescore``: no fit; the model that ``save_models`` holds for the job is loaded, its
    weak event calibration redone on its validation clips with today's library, and the
    scores recomputed (a job without event times only: their settings come from tags). The
    row holds the new scores, and the report lays it over the job's earlier row.

    ``val_fold``: a source-disjoint validation set, that whole training fold passed as
    ``X_val`` (it then neither trains nor is split; early stopping and the weak
    calibration read it). ``config``: the name of a parameter set the overrides start
    from (:data:`CONFIG_NAMES`)."""
    from skattloc import AttLocTagger
    from skattloc.postprocessing import THRESHOLD_SCALE

    parts = job.split(":")
    kind, share, seed = parts[0], float(parts[1]), int(parts[-1])
    teacher = parts[2] if kind == "tagged" else None
    keep = ~np.isin(d["folds"], list(unread))
    tr = np.flatnonzero(keep & (d["folds"] != scored_fold) & (d["folds"] != (val_fold or -1)))
    te = np.flatnonzero(d["folds"] == scored_fold)
    rng = np.random.RandomState(1000 + seed)
    chosen = np.sort(rng.permutation(len(tr))[: int(round(share * len(tr)))])
    from skattloc.timing import with_frame_timing

    X = with_frame_timing(d["X"][tr], d["ext"].frame_timing)  # the cache holds plain arrays: give them their timing
    tags = [tuple(c for c, v in zip(d["classes"], row) if v) for row in d["Y"][tr]]
    events, y = None, list(tags)
    if kind == "timed":
        names = [d["filenames"][i] for i in tr]
        timed_names = {names[i] for i in chosen}
        events = [(f, on, off, tag) for f, on, off, tag in d["strong"] if f in timed_names]
        fit_kw = dict(events=events, filenames=names) if events else {}
    elif kind == "tagged":
        mask = np.zeros(len(tr), dtype=bool)
        mask[chosen] = True
        if teacher == "mt":
            y = [t if m else None for t, m in zip(tags, mask)]
        else:
            X, y = X[mask], [t for t, m in zip(tags, mask) if m]
        fit_kw = {}
    else:
        sys.exit(f"unknown job {job!r}")
    path = Path(save_models or ".") / f"{job.replace(':', '_')}_fold{scored_fold}.skattloc"
    if rescore:
        if fit_kw or not path.is_file():
            sys.exit(f"error: --rescore needs a saved model of a job without event times: {path}")
        tagger = AttLocTagger.load(path)
        val = tagger.validation_indices_
        labelled_val = [i for i in val if y[i] is not None]
        recalibrate_weak(tagger, X[labelled_val], [y[i] for i in labelled_val])
        row = {"job": job, "rescored_from": str(path), "weak_threshold_scale": THRESHOLD_SCALE,
               **score(tagger, d, te, None, None, False)}
        with open(results, "a") as f:
            f.write(json.dumps(row) + "\n")
        log(f"{job}: rescored {path}: event F1 {row['event_f1']:.3f}, segment F1 {row['segment_f1']:.3f}")
        return
    t0 = time.perf_counter()
    params = dict(_configs()[config]) if config else {}
    params.update({} if max_epochs is None else {"max_epochs": max_epochs})  # a smoke test only; results label it
    params.update(overrides or {})
    if val_fold is not None:
        if kind != "timed" or share != 0:
            sys.exit("error: --val-fold runs jobs without event times (timed:0:SEED)")
        va = np.flatnonzero(d["folds"] == val_fold)
        fit_kw = dict(fit_kw, X_val=with_frame_timing(d["X"][va], d["ext"].frame_timing),
                      y_val=[tuple(c for c, v in zip(d["classes"], row) if v) for row in d["Y"][va]])
    tagger = AttLocTagger(random_state=seed, **params).fit(X, y, **fit_kw)
    fit_min = (time.perf_counter() - t0) / 60
    if save_models:  # the fitted model, before any re-tuning, for post-processing studies
        Path(save_models).mkdir(parents=True, exist_ok=True)
        tagger.save(path)
    val = tagger.validation_indices_
    labelled_val = [i for i in val if y[i] is not None]
    row = {"job": job, "kind": kind, "share": share, "teacher": teacher, "seed": seed, "fit_min": fit_min,
           "max_epochs": tagger.max_epochs,
           "n_epochs": tagger.n_epochs_, "label_counts": tagger.label_counts_,
           # the weak calibration's final factor (rows written before it existed: 1.0, the previous calibration)
           "weak_threshold_scale": THRESHOLD_SCALE}
    if scored_fold != FOLD_SCORED or overrides or config or val_fold is not None:
        row.update(scored_fold=int(scored_fold), unread=sorted(int(f) for f in unread), params=dict(overrides or {}),
                   config=config, val_fold=val_fold)
    row.update(score(tagger, d, te, X[labelled_val], [y[i] for i in labelled_val], kind == "timed" and share > 0))
    with open(results, "a") as f:
        f.write(json.dumps(row) + "\n")
    log(f"{job}: EER {row['eer']:.3f}, event F1 {row['event_f1']:.3f}, PSDS1 {row['psds1']:.3f}, {fit_min:.1f} min")


#: The "100 % tagged" ceiling when no ``timed:0`` job ran here: the default recipe on fold 4,
#: trained on folds 1-3 under the same protocol, 3 seeds (``docs/benchmarks.md``, "fold 4 only
#: (untouched)", written by ``examples/benchmark_domestic_mix.py``).
CEILING = {"eer": 0.110, "eer_sd": 0.005, "seeds": 3, "source": "docs/benchmarks.md (default recipe, fold 4, 3 seeds)"}
SECTION_START, SECTION_END = "<!-- label-curves:start -->", "<!-- label-curves:end -->"


def replace_marked_block(page, start, end, lines):
    """Put ``lines`` between the ``start`` and ``end`` markers of ``page`` (replacing an
    earlier copy), or append them, markers included, to the end of the page."""
    page = Path(page)
    text = page.read_text() if page.is_file() else ""
    block = "\n".join([start, *lines, end])
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    page.write_text(text)


def write_benchmarks_section(lines):
    """Put the curves into ``docs/benchmarks.md`` between the markers (replacing an earlier
    copy; ``benchmark_domestic_mix.py --report`` keeps the block when it rewrites the page)."""
    replace_marked_block(DOCS / "benchmarks.md", SECTION_START, SECTION_END, [
        "## Learning from every label (issue 18)", "",
        "Written by `examples/benchmark_labels.py --report`; protocol and all columns in "
        "[label_curves.md](label_curves.md).", "", "![Learning curves](images/label_curves.png)", "", *lines])


def report(results):
    rows = [json.loads(line) for path in results.split(",") if Path(path).is_file() for line in open(path)]
    rows = [r for r in rows if "scored_fold" not in r]  # screening rows (inner folds, other parameters) stay out
    by_job = {}  # one row per job: a later row (a rerun, or --rescore's new scores) is laid over the earlier one
    for r in rows:
        if "rescored_from" in r and r["job"] not in by_job:
            sys.exit(f"error: {r['job']} was rescored but its fit's row is in none of {results}")
        by_job[r["job"]] = {**by_job.get(r["job"], {}), **r}
    rows = list(by_job.values())
    for r in rows:  # a run whose process was stopped (SIGSTOP) records the pause; fit time leaves it out
        r["fit_min"] = r["fit_min"] - r.get("paused_min", 0.0)
    groups = {}
    for r in rows:
        key = (r["kind"], r["share"], r["teacher"])
        groups.setdefault(key, []).append(r)

    def scales(rs):  # the weak calibration's threshold_scale of each row (1.0 before it existed)
        return "/".join(f"{v:g}" for v in sorted({r.get("weak_threshold_scale", 1.0) for r in rs}))

    def stat(rs, k):
        v = [r[k] for r in rs if k in r]
        if not v:
            return ""
        return f"{np.mean(v):.3f} ± {np.std(v):.3f}" if len(v) > 1 else f"{v[0]:.3f} (1 seed)"

    lines = ["# Learning from every label: learning curves on domestic-mix", "",
             "Generated by `examples/benchmark_labels.py --report` from its results file; see the script for the "
             "protocol. Fold 4 is scored by models trained on folds 1-3 with the default recipe; each fit's own "
             "validation split (10 % of the tagged and of the timed clips) drives early stopping and the event "
             "settings. Nothing was chosen on fold 4. Mean ± standard deviation over seeds (population sd); "
             "event F1 is micro over tags, against references whose overlapping same-class events are merged "
             "(`raw`: the unmerged list), onset collar 0.2 s, offset collar max(0.2 s, 20 %). 2 CPU cores, "
             "two fits side by side, one torch thread each. The weak event calibration ends with both thresholds "
             "scaled by `threshold_scale` (0.6 since issue 19, 1.0 before; the last column): it moves the event "
             "F1 of weak-only settings, not EER or PSDS. A row marked rescored in the JSON had its saved model "
             "recalibrated with today's library, with no refit (`--rescore`).", ""]
    lines += ["## Event times for a share of the training clips", "",
              "| timed share | seeds | macro EER | event F1 (fit's settings) | event F1 raw | event F1 macro | event F1 (weak-only settings) | segment F1 | PSDS1 | PSDS2 | fit min | weak threshold scale |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (kind, share, teacher), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        if kind != "timed":
            continue
        lines.append(f"| {share:.0%} | {len(rs)} | {stat(rs, 'eer')} | {stat(rs, 'event_f1')} | {stat(rs, 'event_f1_raw')} | "
                     f"{stat(rs, 'event_f1_macro')} | {stat(rs, 'weak_event_f1') or stat(rs, 'event_f1')} | "
                     f"{stat(rs, 'segment_f1')} | {stat(rs, 'psds1')} | {stat(rs, 'psds2')} | {stat(rs, 'fit_min')} | {scales(rs)} |")
    lines += ["", "## Tags for a share of the training clips, the rest unlabeled", "",
              "| tagged share | unlabeled clips | seeds | macro EER | PSDS1 | event F1 | fit min | weak threshold scale |",
              "|---|---|---|---|---|---|---|---|"]
    for (kind, share, teacher), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], str(kv[0][2]))):
        if kind == "tagged" or (kind == "timed" and share == 0):
            how = {"mt": "mean teacher", "none": "left out", None: "none (100 % tagged)"}[teacher]
            sh = 1.0 if kind == "timed" else share
            lines.append(f"| {sh:.0%} | {how} | {len(rs)} | {stat(rs, 'eer')} | {stat(rs, 'psds1')} | {stat(rs, 'event_f1')} | {stat(rs, 'fit_min')} | {scales(rs)} |")
    full = [r["eer"] for (k, s, _), rs in groups.items() if k == "timed" and s == 0 for r in rs]
    if full:
        ceiling, ceiling_src = float(np.mean(full)), f"the 100 % tagged rows above ({len(full)} seed(s))"
    else:
        ceiling, ceiling_src = CEILING["eer"], CEILING["source"]
        lines.append(f"| 100% | none (100 % tagged) | {CEILING['seeds']} | {CEILING['eer']:.3f} ± {CEILING['eer_sd']:.3f} "
                     f"(from {CEILING['source']}) | | | | |")
    lines.append("")
    for share in sorted({s for (k, s, t) in groups if k == "tagged"}):
        none, mt = groups.get(("tagged", share, "none")), groups.get(("tagged", share, "mt"))
        if none and mt:
            e_none, e_mt = np.mean([r["eer"] for r in none]), np.mean([r["eer"] for r in mt])
            gap = e_none - ceiling
            closed = (e_none - e_mt) / gap if gap > 0 else float("nan")
            lines.append(f"{share:.0%} tagged: the mean teacher closes {closed:.0%} of the macro-EER gap between "
                         f"'{share:.0%} tagged, no unlabeled' ({e_none:.3f}, {len(none)} seed(s)) and 100 % tagged "
                         f"({ceiling:.3f}, {ceiling_src}): {e_mt:.3f} with it ({len(mt)} seed(s)).")
    (DOCS / "label_curves.md").write_text("\n".join(lines) + "\n")
    (DOCS / "label_curves.json").write_text(json.dumps(rows, indent=1) + "\n")
    body = lines[lines.index("## Event times for a share of the training clips"):]
    write_benchmarks_section(["#" + x if x.startswith("## ") else x for x in body])
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        timed = sorted((s, [r["event_f1"] for r in rs]) for (k, s, _), rs in groups.items() if k == "timed")
        if timed:
            axes[0].errorbar([100 * s for s, _ in timed], [np.mean(v) for _, v in timed],
                             yerr=[np.std(v) for _, v in timed], marker="o", capsize=3)
        axes[0].set(xlabel="clips with event times (%)", ylabel="event F1 (fold 4)", title="Event times")
        for teacher, label in (("mt", "rest unlabeled, mean teacher"), ("none", "rest left out")):
            pts = sorted((s, [r["eer"] for r in rs]) for (k, s, t), rs in groups.items() if k == "tagged" and t == teacher)
            if pts:
                axes[1].errorbar([100 * s for s, _ in pts], [np.mean(v) for _, v in pts], yerr=[np.std(v) for _, v in pts],
                                 marker="o", capsize=3, label=label)
        axes[1].axhline(ceiling, color="gray", ls="--", label="100 % tagged")
        axes[1].set(xlabel="tagged clips (%)", ylabel="macro EER (fold 4)", title="Tags and unlabeled clips")
        axes[1].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(DOCS / "images" / "label_curves.png", dpi=110)
    except ImportError:
        pass
    log(f"wrote {DOCS / 'label_curves.md'}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("path", nargs="?")
    p.add_argument("--features-cache")
    p.add_argument("--results", required=True, help="JSON-lines results file (--report: several, comma-separated)")
    p.add_argument("--jobs", default="")
    p.add_argument("--report", action="store_true")
    p.add_argument("--max-epochs", type=int, help="cap the epochs (a smoke test of the script, not a result)")
    p.add_argument("--scored-fold", type=int, default=FOLD_SCORED,
                   help="screening: score this (inner) fold instead of fold 4; results go to their own file")
    p.add_argument("--unread", default="", help="screening: comma list of folds never read (the outer fold, 4)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=JSON",
                   help="screening: an AttLocTagger parameter for every job (repeatable)")
    p.add_argument("--rescore", action="store_true",
                   help="no fit: load each job's model from --save-models, redo its weak event calibration with "
                   "this library and score again (jobs without event times)")
    p.add_argument("--config", choices=CONFIG_NAMES,
                   help="start every job from this parameter set (--param entries apply on top)")
    p.add_argument("--val-fold", type=int,
                   help="source-disjoint validation: this training fold is X_val instead of a random 10 %% split")
    p.add_argument("--clip-duration", type=float, default=CLIP_S, help="clip length in seconds (domestic-mix: 4)")
    p.add_argument("--save-models", metavar="DIR",
                   help="save each fitted tagger to DIR/JOB_foldF.skattloc (':' in JOB as '_'), e.g. to study "
                   "post-processing on it later")
    args = p.parse_args(argv)
    if args.report:
        report(args.results)
        return
    d = load_data(args.path, args.features_cache)
    d["clip_s"] = args.clip_duration
    done = set()
    if Path(args.results).is_file():
        done = {json.loads(line)["job"] for line in open(args.results)}
    for job in [j for j in args.jobs.split(",") if j]:
        if job in done:
            log(f"{job}: done already")
            continue
        log(f"{job}: {'rescoring' if args.rescore else 'fitting'}")
        overrides = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.param)}
        unread = [int(f) for f in args.unread.split(",") if f]
        if args.scored_fold != FOLD_SCORED and FOLD_SCORED not in unread:
            sys.exit(f"error: a screening on fold {args.scored_fold} must leave the scored fold {FOLD_SCORED} unread "
                     f"(--unread {FOLD_SCORED})")
        if args.val_fold is not None and args.val_fold in (args.scored_fold, *unread):
            sys.exit(f"error: --val-fold {args.val_fold} must be a training fold")
        run_job(job, d, args.results, args.max_epochs, args.scored_fold, unread, overrides, args.save_models,
                args.rescore, args.val_fold, args.config)


if __name__ == "__main__":
    main()
