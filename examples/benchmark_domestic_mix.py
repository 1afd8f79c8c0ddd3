"""The domestic-mix benchmark: tags and event times on recordings the model never heard.

domestic-mix holds 2400 clips of real kitchen, office and speech recordings in 4
source-disjoint folds, with clip tags (``weak.csv``) and exact event times
(``strong.tsv``). Each system trains on the clip tags of 3 folds and is scored on the 4th,
4 times, for every seed. **Nothing is chosen on the fold being scored**:

- the recipe of each system (front end, pooling, epochs, averaging, augmentation) was fixed
  before this script runs, on an inner validation split of other folds
  (``examples/screen_recipes.py``, ``docs/screening.md``);
- inside a fit, the tagger holds out ``validation_fraction`` of its training clips (random,
  from the 3 training folds). With the default ``calibrate_events=True`` the event
  post-processing is calibrated on them from their **clip tags only** ("weak labels
  only"), and the events reported first come from those settings;
- "with a small strongly labelled validation set": the same held-out training-fold clips
  (``tagger.validation_indices_``, 10 % of the training folds, 180 clips) with their event
  times from strong.tsv tune the settings (``tagger.tune_events(reference=...)``), and
  the scored fold is decoded again. Strong labels of the scored fold are only read to score.

Per system, fold and seed it records per-tag EER (DCASE 2016 Task 4), frame AP/AUC and
within-clip AUC of ``localize``, PSDS1/PSDS2 (``skattloc.sed_scores``, DCASE task 4
scenarios) of the threshold-free event scores (``tagger.event_scores``: ``localize``
median-filtered with the weak settings, times the clip probability) and of the raw
``localize`` output, and for both post-processing settings event-based F1 (onset collar 0.2 s,
offset collar max(0.2 s, 20 %); micro and macro over tags), 1 s segment F1/ER and
intersection-based F1 (DTC = GTC = 0.5). Results are appended, one JSON line per job, to
``--results``: runs can be split over processes (``--folds``, ``--seeds``) and resumed;
``--report`` turns the lines into ``docs/benchmarks.md``.

Systems (``--systems``):

- ``default``: ``AttLocTagger()`` exactly as shipped (its parameters are recorded);
- ``mean``, ``att``, ``att_loc``, ``linear_softmax``, ``auto``: the default recipe with only
  the pooling changed (``att_loc`` with the z_loc background slot, GRU input and the
  weighted-mean eq. 8, the variant screened);
- ``no_augment``: the default recipe without the augmentation screened in ``docs/screening.md``
  (``time_shift=0``, ``filter_augment=0``: the default before issue 19);
- ``paper``: the paper's configuration (``skattloc.PAPER_CONFIG``: per-frame CNN, 3 biGRU
  layers of 128, ``att_loc``, Adam 1e-3, batch 100, 20 epochs), with the same 10 %
  validation split for event calibration;
- ``desed``: the DCASE task 4 (DESED) baseline CRNN, from scratch, built from skattloc's
  parameters (``skattloc.DESED_CONFIG``: 7 blocks of GLU convolutions with average pooling,
  2 biGRU layers of 128, the ``loc`` pooling), with its own 10 % validation split;
- ``gmm``: the DCASE 2016 Task 4 baseline (:class:`skattloc.baselines.GMMTagger`), tags only.

Typical use::

    # once, where the audio is: the log-mel cache
    python examples/benchmark_domestic_mix.py ../shared/data/domestic-mix \\
        --features-cache out/domestic_mix_logmel.npz --precompute-only
    # the jobs, e.g. two processes of one torch thread each on a 2-core machine
    OMP_NUM_THREADS=1 python examples/benchmark_domestic_mix.py --features-cache out/domestic_mix_logmel.npz \\
        --systems default,mean,att,att_loc --seeds 0,1,2 --folds 1,2 --results out/bench.jsonl &
    OMP_NUM_THREADS=1 python examples/benchmark_domestic_mix.py --features-cache out/domestic_mix_logmel.npz \\
        --systems default,mean,att,att_loc --seeds 0,1,2 --folds 3,4 --results out/bench.jsonl &
    # the report
    python examples/benchmark_domestic_mix.py --features-cache out/domestic_mix_logmel.npz \\
        --report out/bench.jsonl --out-md docs/benchmarks.md --out-json docs/benchmarks.json \\
        --plot docs/images/domestic_mix_localization.png
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np

# Run from a checkout without installing: make the repository's skattloc importable.
_REPO = Path(__file__).resolve().parents[1]
if (_REPO / "skattloc" / "__init__.py").is_file() and str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))


def _stub_missing_audio_libs():
    """``import skattloc`` imports librosa and soundfile (audio features). A machine that only
    reads the features cache, such as a GPU node without them, never calls them: stand in
    empty modules there so the import succeeds. Extracting features still needs the real ones."""
    import importlib.machinery
    import types

    missing = []
    for name in ("librosa", "soundfile"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        # Lightning imports torchmetrics, which probes for librosa: let it see the truth first.
        import lightning.pytorch  # noqa: F401
        import torchmetrics  # noqa: F401
    for name in missing:
        stub = types.ModuleType(name)
        stub.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules[name] = stub
        print(f"note: {name} is not installed; using a stub (features must come from --features-cache)", file=sys.stderr)


_stub_missing_audio_libs()



# the default before the issue-19 augmentation became part of it (docs/screening.md)
NO_AUGMENT = dict(time_shift=0.0, filter_augment=0.0)
ATT_LOC_SCREENED = dict(pooling="att_loc", loc_background=True, loc_input="rnn", loc_denominator="att_loc")
SYSTEMS = {
    "default": {},
    "mean": dict(pooling="mean"),
    "att": dict(pooling="att"),
    "att_loc": ATT_LOC_SCREENED,
    "linear_softmax": dict(pooling="linear_softmax"),
    "auto": dict(pooling="auto"),
    "no_augment": NO_AUGMENT,
    "paper": "PAPER",  # skattloc.PAPER_CONFIG + validation_fraction=0.1
    "desed": "DESED",  # skattloc.DESED_CONFIG
    "gmm": None,
}
DESCRIBE = {
    "default": "`AttLocTagger()` as shipped",
    "mean": "default recipe, mean pooling (eq. 2)",
    "att": "default recipe, attention pooling (eq. 3-5)",
    "att_loc": "default recipe, attention + localization (eq. 3-8) with the z_loc background slot, GRU input, weighted-mean eq. 8",
    "linear_softmax": "default recipe, linear-softmax pooling",
    "auto": "default recipe, auto-pool",
    "no_augment": "the default recipe without its time shift and FilterAugment (`time_shift=0, filter_augment=0`: the default before issue 19)",
    "paper": "the paper's configuration (`skattloc.PAPER_CONFIG`, 20 epochs) + 10 % validation split for event calibration",
    "desed": "the DCASE task 4 (DESED) baseline CRNN from scratch (`skattloc.DESED_CONFIG`: 7 GLU conv blocks, 2 biGRU layers of 128, pooling `loc`)",
    "gmm": "DCASE 2016 Task 4 baseline: 14 MFCCs, 8-component GMM per tag vs background, mean frame LLR (tags only)",
}
T_COLLAR, PCT = 0.2, 0.2  # event-based F1: onset collar, offset collar fraction
INTERSECTION = dict(dtc_threshold=0.5, gtc_threshold=0.5)


def make_tagger(system, seed, args):
    from skattloc import DESED_CONFIG, PAPER_CONFIG, AttLocTagger

    spec = SYSTEMS[system]
    configs = {"PAPER": dict(PAPER_CONFIG, validation_fraction=0.1), "DESED": dict(DESED_CONFIG)}
    params = configs[spec] if isinstance(spec, str) else dict(spec)
    if args.max_epochs is not None:
        params["max_epochs"] = args.max_epochs
    for kv in args.param:
        k, v = kv.split("=", 1)
        params[k] = json.loads(v)
    return AttLocTagger(**params, random_state=seed, accelerator=args.accelerator)


def _events_row(report):
    """The JSON fields of one post-processing setting, from its EvaluationReport.

    ``event_*`` score against the reference list as given, as every stored row since the
    first run did; ``event_f1_merged`` / ``event_f1_merged_macro`` against the list with
    overlapping same-tag events merged (the report's headline, as PSDS counts events)."""
    ev, seg, classes = report.event_raw, report.segment, report.classes
    return {
        "event_f1_merged": report.event["f_measure"],
        "event_f1_merged_macro": report.event["class_wise_average"]["f_measure"],
        "event_f1": ev["f_measure"], "event_f1_macro": ev["class_wise_average"]["f_measure"],
        "event_er": ev["error_rate"],
        "event_f1_per_class": [ev["class_wise"][c]["f_measure"] for c in classes],
        "segment_f1": seg["f_measure"], "segment_er": seg["error_rate"],
        "segment_f1_per_class": [seg["class_wise"][c]["f_measure"] for c in classes],
        "intersection_f1": report.intersection["f_measure"] if report.intersection else float("nan"),
        "n_events": len(report.events), "n_ref": report.n_reference_events,
    }


def _evaluate(tagger, scores, clip, d, te, ref_te, names_te, psds=True, bootstrap=0, random_state=0):
    """skattloc's evaluation report (skattloc.evaluation) of the scored fold: the EER of
    ``clip``, PSDS of the event scores of ``scores``, and the events that
    ``tagger.detect_events`` makes with its current settings; the benchmark's conventions.
    ``bootstrap``: resamples of the fold's clips (seeded by ``random_state``, the fold, so
    every seed of a fold has the same draws and the folds have their own)."""
    from skattloc.evaluation import evaluate_scores

    est = tagger.detect_events(d["X"][te], filenames=names_te, clip_duration=d["duration"])
    return evaluate_scores(list(scores), clip, d["Y"][te], classes=d["classes"],
                           postprocessor=tagger.get_event_postprocessor(), timing=tagger.frame_timing_,
                           reference=ref_te, filenames=names_te, clip_duration=d["duration"], psds=psds,
                           segment_length=1.0, t_collar=T_COLLAR, percentage_of_length=PCT, events=est,
                           bootstrap=bootstrap, random_state=random_state, **INTERSECTION)


def run_job(system, fold, seed, args, d, truth):
    """Train one system on the other folds and score ``fold``; returns a JSON-able dict."""
    from skattloc.metrics import frame_auc, frame_average_precision, within_clip_auc

    classes, dur = d["classes"], d["duration"]
    tr, te = np.flatnonzero(d["folds"] != fold), np.flatnonzero(d["folds"] == fold)
    names_te = [d["filenames"][i] for i in te]
    ref_te = [e for e in d["strong"] if e[0] in set(names_te)]
    row = {"system": system, "fold": int(fold), "seed": int(seed), "n_train": len(tr), "n_test": len(te)}
    if system == "gmm":
        return dict(row, **gmm_job(d, tr, te, seed, truth))
    tagger = make_tagger(system, seed, args)
    t = time.perf_counter()
    tags = [[classes[k] for k in np.flatnonzero(y)] for y in d["Y"][tr]]  # names: events carry them
    tagger.fit(d["X"][tr], tags)
    assert list(tagger.classes_) == list(classes), (tagger.classes_, classes)
    row["fit_s"] = time.perf_counter() - t
    row["params"] = {k: v for k, v in tagger.get_params().items() if isinstance(v, (int, float, str, bool, type(None)))}
    row["n_epochs"] = tagger.n_epochs_
    row["history"] = [{k: round(float(v), 5) for k, v in h.items()} for h in tagger.history_]
    t = time.perf_counter()
    out = tagger.frame_outputs(d["X"][te])
    clip = np.stack([o["clip"] for o in out])
    scores = np.stack([o[tagger.localization] for o in out])
    row["predict_s"] = time.perf_counter() - t
    # weak labels only: the settings fit() calibrated on its validation clips' tags. The
    # report holds the EER, and PSDS of the threshold-free event scores (localize output
    # median-filtered with the weak settings, times the clip probability: tagger.event_scores)
    report = _evaluate(tagger, scores, clip, d, te, ref_te, names_te, bootstrap=args.bootstrap, random_state=int(fold))
    row["eer"] = report.eer
    # per-resample values (4 decimals): the report's intervals average them over seeds and folds
    row["resamples"] = {k: np.round(v, 4).tolist() for k, v in report.resamples.items()}
    row["psds1"], row["psds2"] = report.psds1, report.psds2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row["frame_ap"] = frame_average_precision(truth[te], scores, average=None)
        row["frame_auc"] = frame_auc(truth[te], scores, average=None)
        row["within_clip_auc"] = within_clip_auc(truth[te], scores, average=None)
    from skattloc.sed_scores import psds

    for sc in (1, 2):  # PSDS of the raw localize output
        row[f"psds{sc}_raw"] = psds(ref_te, scores, classes, names_te, dur, scenario=sc, timing=tagger.frame_timing_)
    if args.save_models:
        Path(args.save_models).mkdir(parents=True, exist_ok=True)
        tagger.save(Path(args.save_models) / f"{system}_fold{fold}_seed{seed}.skattloc")
    if "att" in out[0] or "loc" in out[0]:
        row["collapse"] = collapse_stats(np.stack([o["loc"] for o in out]) if "loc" in out[0] else None,
                                         np.stack([o["att"] for o in out]) if "att" in out[0] else None, truth[te])
    row["weak_settings"] = tagger.event_settings_
    row["weak"] = _events_row(report)
    est = report.events
    # a small strongly labelled validation set: the same held-out training-fold clips
    val = tr[tagger.validation_indices_]
    names_val = [d["filenames"][i] for i in val]
    ref_val = [e for e in d["strong"] if e[0] in set(names_val)]
    row["n_strong_val"] = len(val)
    if len(val):
        tagger.tune_events(d["X"][val], reference=ref_val, filenames=names_val, clip_duration=dur)
        row["strong_settings"] = tagger.event_settings_
        report = _evaluate(tagger, scores, clip, d, te, ref_te, names_te, psds=False)
        row["strong"] = _events_row(report)
        est = report.events
    if args.plot_data and system == "default" and seed == min(args.seed_list) and fold == min(args.fold_list):
        j = pick_clip(d, te)
        row["plot"] = {"index": int(te[j]), "scores": scores[j].tolist(), "clip": clip[j].tolist(),
                       "att": out[j]["att"].tolist() if "att" in out[j] else None,
                       "events": [e for e in est if e[0] == names_te[j]]}
    return row


def gmm_job(d, tr, te, seed, truth):
    from scipy.special import expit

    from skattloc.baselines import GMMTagger
    from skattloc.metrics import equal_error_rate, frame_average_precision, within_clip_auc

    gmm = GMMTagger(n_components=8, n_mfcc=14, random_state=seed)
    t = time.perf_counter()
    gmm.fit(d["X"][tr], d["Y"][tr])
    fit_s = time.perf_counter() - t
    llr = np.stack(gmm.frame_llr(d["X"][te]))
    clip = expit(llr.mean(axis=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"fit_s": fit_s, "eer": equal_error_rate(d["Y"][te], clip, average=None),
                "frame_ap": frame_average_precision(truth[te], expit(llr), average=None),
                "within_clip_auc": within_clip_auc(truth[te], expit(llr), average=None)}


def pick_clip(d, te):
    """A scored clip with events of two different tags, all short enough to show 'when'."""
    names = [d["filenames"][i] for i in te]
    by = {}
    for e in d["strong"]:
        by.setdefault(e[0], []).append(e)
    for limit in (0.4, 0.6, 0.8, 1.01):
        for j, n in enumerate(names):
            evs = by.get(n, [])
            if len({e[3] for e in evs}) >= 2 and all(e[2] - e[1] < limit * d["duration"] for e in evs):
                return j
    return 0


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------- data
def load_data(args):
    """Features (carrying their frame timing), tags, folds and strong labels, from the cache
    when it exists."""
    cache = Path(args.features_cache) if args.features_cache else None
    if cache is not None and cache.is_file():
        log(f"loading features and labels from {cache}")
        z = np.load(cache, allow_pickle=False)
        strong = list(zip(z["strong_file"].tolist(), z["strong_onset"].tolist(), z["strong_offset"].tolist(), z["strong_label"].tolist()))
        d = dict(
            X=z["X"].astype(np.float32),
            Y=z["Y"].astype(np.int64),
            classes=z["classes"].tolist(),
            folds=z["folds"].astype(np.int64),
            filenames=z["filenames"].tolist(),
            strong=strong,
            hop_s=float(z["hop_s"]),
            offset_s=float(z["offset_s"]),
            duration=float(z["duration"]),
        )
    else:
        if not args.path:
            sys.exit("error: give the data folder PATH (no features cache found at "
                     f"{str(cache)!r})" if cache else "error: give the data folder PATH or --features-cache")
        from skattloc import LogMelExtractor, load_weak_dataset

        data = load_weak_dataset(args.path)
        if data.folds is None or data.strong is None:
            sys.exit(f"error: {args.path} needs a fold column in weak.csv and a strong.tsv")
        keep = np.flatnonzero(data.folds > 0)  # fold 0 = held-out test clips, unused here
        ext = LogMelExtractor(n_jobs=args.n_jobs, verbose=True)
        t = time.perf_counter()
        X = ext.fit_transform([data.paths[i] for i in keep])
        if isinstance(X, list):
            sys.exit("error: clips of different lengths; this benchmark expects equal-length clips")
        log(f"log-mel of {len(keep)} clips: {time.perf_counter() - t:.1f} s, shape {X.shape}")
        filenames = [data.filenames[i] for i in keep]
        names = set(filenames)
        d = dict(
            X=X.astype(np.float32),
            Y=np.asarray(data.Y)[keep].astype(np.int64),
            classes=list(data.classes),
            folds=data.folds[keep],
            filenames=filenames,
            strong=[e for e in data.strong if e[0] in names],
            hop_s=ext.hop_seconds,
            offset_s=ext.frame_offset_seconds,
            duration=(ext.n_fft + (X.shape[1] - 1) * ext.hop_length) / ext.sr,
        )
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            s = d["strong"]
            np.savez_compressed(
                cache,
                X=d["X"].astype(np.float16),
                Y=d["Y"].astype(np.int8),
                classes=np.array(d["classes"]),
                folds=d["folds"].astype(np.int8),
                filenames=np.array(d["filenames"]),
                strong_file=np.array([e[0] for e in s]),
                strong_onset=np.array([e[1] for e in s], dtype=np.float64),
                strong_offset=np.array([e[2] for e in s], dtype=np.float64),
                strong_label=np.array([e[3] for e in s]),
                hop_s=d["hop_s"],
                offset_s=d["offset_s"],
                duration=d["duration"],
            )
            log(f"wrote features cache {cache} ({cache.stat().st_size / 2**20:.1f} MiB, float16)")
    if args.max_clips:
        # The first clips of each fold, the same share per fold (smoke tests).
        per = max(1, args.max_clips // len(np.unique(d["folds"])))
        keep = np.concatenate([np.flatnonzero(d["folds"] == f)[:per] for f in np.unique(d["folds"])])
        names = {d["filenames"][i] for i in keep}
        d.update(
            X=d["X"][keep], Y=d["Y"][keep], folds=d["folds"][keep],
            filenames=[d["filenames"][i] for i in keep],
            strong=[e for e in d["strong"] if e[0] in names],
        )
    # The features carry their frame timing, which fit records (tagger.frame_timing_).
    from skattloc.timing import FrameTiming, with_frame_timing

    d["timing"] = FrameTiming(d["hop_s"], d["offset_s"])
    d["X"] = with_frame_timing(np.asarray(d["X"]), d["timing"])
    return d


def machine_info(accelerator):
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpu": None,
    }
    try:
        import lightning

        info["lightning"] = lightning.__version__
    except ImportError:
        pass
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def collapse_stats(loc, att, truth):
    """How z_loc spreads over classes, and whether z_att marks event frames."""
    from sklearn.metrics import roc_auc_score

    out = {}
    any_event = truth.any(axis=-1).reshape(-1)
    if loc is not None:
        k = loc.shape[-1]
        flat = loc.reshape(-1, k).astype(np.float64)
        out["loc_argmax_share"] = np.bincount(flat.argmax(axis=1), minlength=k) / len(flat)
        p = flat / np.clip(flat.sum(axis=1, keepdims=True), 1e-12, None)
        ent = -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=1) / np.log(k)
        out["loc_norm_entropy"] = float(ent.mean())
    if att is not None:
        a = att.reshape(-1)
        out["att_event"] = float(a[any_event].mean())
        out["att_nonevent"] = float(a[~any_event].mean())
        out["att_frame_auc"] = float(roc_auc_score(any_event, a))
    return out


def to_jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


# ----------------------------------------------------------------------------- report
def fmt(x, nd=3):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:.{nd}f}"


def _get(row, key):
    """A scalar metric of a job row: ``"eer"`` -> macro, ``"weak.event_f1"`` -> nested."""
    v = row
    for part in key.split("."):
        if not isinstance(v, dict) or part not in v:
            return float("nan")
        v = v[part]
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, list):
        v = [x for x in v if x is not None]
        return float(np.nanmean(v)) if v else float("nan")
    return float("nan") if v is None else float(v)


def seed_means(rows, key, folds):
    """Per seed: the mean over ``folds`` of the metric (seeds with every fold only)."""
    by = {}
    for r in rows:
        by.setdefault(r["seed"], {})[r["fold"]] = _get(r, key)
    return {s: float(np.mean([v[f] for f in folds])) for s, v in sorted(by.items()) if set(folds) <= set(v)}


def ms(rows, key, folds, nd=3):
    v = list(seed_means(rows, key, folds).values())
    if not v:
        return "–"
    if len(v) == 1:
        return fmt(v[0], nd)
    return f"{fmt(float(np.mean(v)), nd)} ± {fmt(float(np.std(v, ddof=1)), nd)}"


#: Headline metrics: the job row's key, the EvaluationReport resample key, the label.
HEADLINE = (("eer", "eer_macro", "macro EER"), ("weak.event_f1_merged", "event_f1", "event F1 (micro)"),
            ("weak.event_f1_merged_macro", "event_f1_macro", "event F1 (macro)"),
            ("weak.segment_f1", "segment_f1", "segment F1"), ("psds1", "psds1", "PSDS1"), ("psds2", "psds2", "PSDS2"))


def fold_sd(rows, key, folds):
    """Standard deviation over the folds of the per-fold metric (mean over the seeds that ran it)."""
    per = [np.mean([_get(r, key) for r in rows if r["fold"] == f]) for f in folds if any(r["fold"] == f for r in rows)]
    return float(np.std(per, ddof=1)) if len(per) > 1 else float("nan")


def cv_interval(rows, resample_key, folds, confidence=0.95):
    """95 % interval of the 4-fold mean (averaged over seeds), over the clips' sampling: a
    bootstrap stratified by fold. Each job holds its fold's resamples (the same draws for
    every seed of a fold); per draw, the seeds are averaged within each fold, then the folds.
    NaN when a fold has no job with resamples."""
    per_fold = []
    for f in folds:
        arrs = [np.asarray(r["resamples"][resample_key], dtype=np.float64) for r in rows
                if r["fold"] == f and resample_key in r.get("resamples", {})]
        if not arrs or len({len(a) for a in arrs}) != 1:
            return (float("nan"), float("nan"))
        per_fold.append(np.mean(arrs, axis=0))
    from skattloc.evaluation import percentile_interval

    return percentile_interval(np.mean(per_fold, axis=0), confidence)


def paired_cv_difference(rows_a, rows_b, key, resample_key, folds, confidence=0.95):
    """The difference ``a - b`` of two systems' 4-fold means, over the (fold, seed) jobs both
    ran, and its 95 % interval over the clips' sampling. Both systems' jobs of a fold hold the
    same bootstrap draws (seeded by the fold), so the difference is taken draw by draw: per
    draw, the paired seeds are averaged within each fold, then the folds. Returns
    ``(difference, low, high, n_pairs)``; NaNs when a fold has no pair with draws."""
    diffs, per_fold, n = [], [], 0
    for f in folds:
        pairs = [(a, b) for a in rows_a for b in rows_b
                 if a["fold"] == f and b["fold"] == f and a["seed"] == b["seed"]]
        if not pairs:
            return (float("nan"),) * 3 + (0,)
        diffs.append(np.mean([_get(a, key) - _get(b, key) for a, b in pairs]))
        n += len(pairs)
        draws = [np.asarray(a["resamples"][resample_key], dtype=np.float64)
                 - np.asarray(b["resamples"][resample_key], dtype=np.float64) for a, b in pairs
                 if resample_key in a.get("resamples", {}) and resample_key in b.get("resamples", {})]
        if len(draws) != len(pairs) or len({len(x) for x in draws}) != 1:
            per_fold = None
        elif per_fold is not None:
            per_fold.append(np.mean(draws, axis=0))
    if not per_fold:
        return float(np.mean(diffs)), float("nan"), float("nan"), n
    from skattloc.evaluation import percentile_interval

    lo, hi = percentile_interval(np.mean(per_fold, axis=0), confidence)
    return float(np.mean(diffs)), lo, hi, n


FULL_FIT_START, FULL_FIT_END = "<!-- full-fit:start -->", "<!-- full-fit:end -->"


def full_fit_lines(full_fits):
    """One bullet per ``--full-fit`` row: the measured time of an uncut fit, or the rate of a
    run cut with ``--max-epochs`` and the projection it gives (labelled as one)."""
    from skattloc import AttLocTagger

    default_max = AttLocTagger().max_epochs
    out = []
    for r in full_fits:
        per_epoch = r["fit_s"] / max(r["n_epochs"], 1)
        if r.get("max_epochs", default_max) == default_max:
            stop = ("early stopping ended it" if r["n_epochs"] < default_max else "the full epoch budget")
            out.append(f"- **The default recipe on all {r['n_clips']} clips, one uncut fit** (`--full-fit`, what "
                       f"`skattloc fit DATA` trains): {r['fit_s'] / 60:.1f} min for {r['n_epochs']} epochs ({stop}; "
                       f"{per_epoch:.1f} s per epoch) with {r['threads']} torch threads on {r['machine']}, finished "
                       f"{r['finished']}" + (f"; {r['note']}" if r.get("note") else "") + ".")
        else:  # a timing run cut short with --max-epochs: per-epoch time, and what the full budget would take
            out.append(f"- **The default recipe on all {r['n_clips']} clips, timing run cut to {r['max_epochs']} epochs** "
                       f"(`--full-fit --max-epochs {r['max_epochs']}`): {r['fit_s'] / 60:.1f} min for {r['n_epochs']} epochs, "
                       f"{per_epoch:.1f} s per epoch with {r['threads']} torch threads on {r['machine']} (finished "
                       f"{r['finished']}); at that rate the default's full budget of {default_max} epochs (early stopping "
                       f"usually ends it sooner) would take {per_epoch * default_max / 60:.1f} min. This is a projection "
                       "from a measured rate, not a measured full fit.")
    return out


def _after_time_heading(text, block):
    """``text`` with ``block`` as the first thing under its ``## Time`` heading."""
    head, rest = text.split("## Time\n", 1)
    return head + "## Time\n\n" + block + "\n" + rest


def write_full_fit_block(out_md, full_fits):
    """Put the ``--full-fit`` timings into the Time section of ``out_md`` (a marked block,
    replaced on the next run), without rewriting the cross-validation report around it."""
    page = Path(out_md)
    text = page.read_text() if page.is_file() else ""
    block = "\n".join([FULL_FIT_START, *full_fit_lines(full_fits), FULL_FIT_END])
    if FULL_FIT_START in text and FULL_FIT_END in text:
        head, rest = text.split(FULL_FIT_START, 1)
        text = head + block + rest.split(FULL_FIT_END, 1)[1]
    elif "## Time\n" in text:
        text = _after_time_heading(text, block)
    else:
        text = text.rstrip("\n") + "\n\n## Time\n\n" + block + "\n"
    page.write_text(text)
    log(f"wrote the full-fit timing into {out_md}")


def write_report(args, rows, d, info):
    classes = d["classes"]
    systems = [s for s in SYSTEMS if any(r["system"] == s for r in rows)]
    by = {s: [r for r in rows if r["system"] == s] for s in systems}
    folds = sorted({r["fold"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    L = ["# Benchmarks: domestic-mix, 4-fold cross-validation, nothing chosen on the scored fold\n"]
    L.append("Generated by `examples/benchmark_domestic_mix.py --report`; every number below was measured by "
             "the jobs listed in *Run*. Re-run the commands to reproduce it.\n")
    L.append("## Protocol: how every setting was chosen\n")
    L.append(
        "- Each system trains on the clip tags of 3 folds and is scored on the 4th; the folds share no "
        "recording source. Every fold is scored once per seed; a number is the mean over seeds of the "
        "4-fold mean, ± the standard deviation over seeds.\n"
        "- The recipes (front end, pooling, epochs, weight averaging, augmentation, the event calibration "
        "constants) were fixed before these runs on an inner split: training folds 1-2, validation fold 3, "
        "fold 4 never read (`examples/screen_recipes.py`, `docs/screening.md`). Fold 4 below is therefore "
        "the fully untouched check; folds 1-3 were screening data for the choice of the recipe, never "
        "scored there.\n"
        "- Inside each fit, `validation_fraction=0.1` of the training clips (random; not source-disjoint "
        "from the rest) are held out. **Weak labels only:** the event post-processing is calibrated on "
        "their clip tags (`calibrate_events=True`, `EventPostprocessor.calibrate`). **Small strongly "
        "labelled validation set:** the same held-out clips (180 per fit) with their event times tune "
        "the settings (`tagger.tune_events(reference=...)`). No setting ever sees the scored fold, and "
        "none is chosen on the model's predictions of its own training clips.\n")
    if "no_augment" in systems:
        L.append("- One exception, said here: the time shift and FilterAugment of the default were screened on "
                 "the inner split (3 seeds) and made default only after these runs, whose `default` (then "
                 "called `augment`) and `no_augment` (the default then) had to agree with the screening, as "
                 "issue 19's rule asks. The choice between those two read these scores; every other setting "
                 "did not.\n")
    L.append("## Run\n")
    L.append(f"- Jobs: {len(rows)} (systems {systems}, folds {folds}, seeds {seeds}), results file `{args.report}`")
    for cmd in sorted({_relative_paths(r.get("command", "?")) for r in rows}):
        L.append(f"- Command: `{cmd}`")
    machines = sorted({r.get("machine", "?") for r in rows})
    L.append(f"- Machine(s): {'; '.join(machines)}")
    L.append(f"- Software: {info['python']}, torch {info['torch']}, lightning {info.get('lightning', '?')}\n")
    L.append("Systems: " + "; ".join(f"`{s}`: {DESCRIBE[s]}" for s in systems) + ".\n")
    missing = [(s, f, sd) for s in systems for f in folds for sd in seeds if not any(r["fold"] == f and r["seed"] == sd for r in by[s])]
    if missing:
        L.append(f"> **Incomplete:** {len(missing)} (system, fold, seed) jobs missing: {missing[:12]}"
                 f"{' ...' if len(missing) > 12 else ''}. Means over folds use seeds with every fold only "
                 "(`–` where there is none); per-fold tables and paired differences show what was run.\n")

    L.append("## Summary\n")
    L.append("Tagging: macro EER (DCASE 2016 Task 4; lower is better). Localization of the `localize` output: "
             "within-clip AUC (per tag over the clips that hold it) and frame AP; PSDS1 and PSDS2 (threshold-free, "
             "DCASE task 4 scenarios) of the event scores (`tagger.event_scores`: `localize` median-filtered with "
             "the weak settings, times the clip probability). "
             "Events: event-based F1 (onset collar 0.2 s, offset collar max(0.2 s, 20 %), micro over tags) "
             "and 1 s segment F1, with post-processing from weak labels only and from the small strongly "
             "labelled validation set.\n")
    L.append("**Headline event F1**: against the reference with overlapping events of one tag in one clip "
             "merged into one, as psds_eval and sed_scores_eval count events (PSDS uses the same list), micro "
             "(over all events) and class-macro (mean of the per-tag F1). The F1 against the reference as given "
             "is in *Events* (`raw`).\n")
    L.append("| system | macro EER | within-clip AUC | frame AP | PSDS1 | PSDS2 | event F1 micro (weak) | event F1 macro (weak) | segment F1 (weak) | event F1 micro (strong val) | segment F1 (strong val) | fit min |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in systems:
        rs = by[s]
        fit = np.mean([r["fit_s"] for r in rs if "fit_s" in r] or [float("nan")]) / 60
        L.append(f"| {s} | {ms(rs, 'eer', folds)} | {ms(rs, 'within_clip_auc', folds)} | {ms(rs, 'frame_ap', folds)} | "
                 f"{ms(rs, 'psds1', folds)} | {ms(rs, 'psds2', folds)} | {ms(rs, 'weak.event_f1_merged', folds)} | "
                 f"{ms(rs, 'weak.event_f1_merged_macro', folds)} | {ms(rs, 'weak.segment_f1', folds)} | "
                 f"{ms(rs, 'strong.event_f1_merged', folds)} | {ms(rs, 'strong.segment_f1', folds)} | {fit:.1f} |")
    L.append("")
    if any(r.get("resamples") for r in rows):
        n_res = max(len(next(iter(r["resamples"].values()))) for r in rows if r.get("resamples"))
        L.append("## Uncertainty: seeds, folds and clips\n")
        L.append("Three spreads of each headline figure (weak labels only): the standard deviation over seeds of "
                 "the 4-fold mean, the standard deviation over folds of the per-fold mean (over seeds), and a 95 % "
                 f"interval of the 4-fold mean over the sampling of the clips: {n_res} bootstrap resamples of each "
                 "fold's clips (drawn with replacement, seeded by the fold, the same draws for every seed), "
                 "averaged over the seeds and then the folds per draw (a bootstrap stratified by fold). PSDS: "
                 "sed_scores_eval's subsets that each leave a fifth of a fold's clips out instead, which gives a "
                 "narrower interval than resampling with replacement.\n")
        L.append("| system | metric | mean | sd over seeds | sd over folds | 95 % interval (clips) |")
        L.append("|---|---|---|---|---|---|")
        for s in systems:
            for key, rkey, label in HEADLINE:
                sm = list(seed_means(by[s], key, folds).values())
                if not sm:
                    continue
                lo, hi = cv_interval(by[s], rkey, folds)
                ci = f"[{fmt(lo)}, {fmt(hi)}]" if np.isfinite(lo) else "–"
                sd = fmt(float(np.std(sm, ddof=1))) if len(sm) > 1 else "–"
                L.append(f"| {s} | {label} | {fmt(float(np.mean(sm)))} | {sd} | {fmt(fold_sd(by[s], key, folds))} | {ci} |")
        L.append("")
        others = [s for s in systems if s != "default" and s in SYSTEMS and SYSTEMS[s] is not None]
        if "default" in by and others:
            L.append("Paired differences to `default` (each system minus `default`, over the (fold, seed) jobs both "
                     "ran; lower is better for the EER, higher for the rest), with a 95 % interval over the clips: "
                     "the two systems are scored on the same bootstrap draws of each fold, so the interval is of the "
                     "difference draw by draw. It covers the sampling of the clips, not of the seeds.\n")
            L.append("| system | metric | difference | 95 % interval (clips) | (fold, seed) pairs |")
            L.append("|---|---|---|---|---|")
            for s in others:
                for key, rkey, label in HEADLINE:
                    d_, lo, hi, n = paired_cv_difference(by[s], by["default"], key, rkey, folds)
                    if n:
                        ci = f"[{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) else "–"
                        L.append(f"| {s} | {label} | {d_:+.3f} | {ci} | {n} |")
            L.append("")
    L.append("## Tagging: EER per tag\n")
    L.append("Mean over seeds and folds; `macro` as in the summary.\n")
    L.append("| system | " + " | ".join(classes) + " | macro | fold 4 only (untouched) |")
    L.append("|---" * (len(classes) + 3) + "|")
    for s in systems:
        per = np.nanmean([r["eer"] for r in by[s]], axis=0)
        f4 = [r for r in by[s] if r["fold"] == 4]
        covered = sorted({r["fold"] for r in by[s]})
        label = s if covered == folds else f"{s} (fold {', '.join(map(str, covered))} only)"
        L.append(f"| {label} | " + " | ".join(fmt(x) for x in per) + f" | {ms(by[s], 'eer', folds)} | "
                 f"{ms(f4, 'eer', [4]) if f4 else '–'} |")
    L.append("")
    L.append("Macro EER per scored fold (mean over seeds):\n")
    L.append("| system | " + " | ".join(f"fold {f}" for f in folds) + " |")
    L.append("|---" * (len(folds) + 1) + "|")
    for s in systems:
        cells = [fmt(float(np.mean([_get(r, 'eer') for r in by[s] if r['fold'] == f]))) if any(r['fold'] == f for r in by[s]) else "–" for f in folds]
        L.append(f"| {s} | " + " | ".join(cells) + " |")
    L.append("")
    if "default" in by:
        L.append("Paired differences, `default` minus each system, per fold (mean over the seeds both ran; `default` "
                 "is better where the EER difference is negative and the AUC and F1 differences positive), the mean "
                 "over the folds both ran, and the share of (fold, seed) pairs that `default` wins:\n")
        L.append("| metric | system | " + " | ".join(f"fold {f}" for f in folds) + " | mean | default wins |")
        L.append("|---" * (len(folds) + 4) + "|")
        for key, sign in (("eer", 1), ("within_clip_auc", -1), ("weak.event_f1", -1)):
            for s in systems:
                if s == "default":
                    continue
                diffs, cells, wins, n = [], [], 0, 0
                for f in folds:
                    pairs = [(_get(a, key), _get(b, key)) for a in by["default"] for b in by[s]
                             if a["fold"] == f and b["fold"] == f and a["seed"] == b["seed"]]
                    if pairs:
                        diffs.append(float(np.mean([a - b for a, b in pairs])))
                        cells.append(f"{diffs[-1]:+.3f}")
                        wins += sum((a - b) * sign < 0 for a, b in pairs)
                        n += len(pairs)
                    else:
                        cells.append("–")
                if diffs:
                    L.append(f"| {key} | {s} | " + " | ".join(cells) + f" | {np.mean(diffs):+.3f} | {wins}/{n} |")
        L.append("")

    L.append("PSDS of the raw `localize` output, for comparison (no smoothing, no clip probability):\n")
    L.append("| system | PSDS1 (raw) | PSDS2 (raw) | PSDS1 (event scores) | PSDS2 (event scores) |")
    L.append("|---|---|---|---|---|")
    for s in systems:
        if any("psds1_raw" in r for r in by[s]):
            L.append(f"| {s} | {ms(by[s], 'psds1_raw', folds)} | {ms(by[s], 'psds2_raw', folds)} | "
                     f"{ms(by[s], 'psds1', folds)} | {ms(by[s], 'psds2', folds)} |")
    L.append("")
    L.append("## Events\n")
    L.append("Event F1 micro (over all events) and macro (mean of per-tag F1) against the merged reference (the "
             "headline) and against the reference as given (`raw`), event error rate (raw), 1 s segment "
             "F1 and error rate, intersection-based F1 (DTC = GTC = 0.5, macro), events written per reference "
             "event.\n")
    L.append("| system | labels for post-processing | event F1 | event F1 macro | event F1 raw | event F1 macro raw | event ER raw | segment F1 | segment ER | intersection F1 | events / reference |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in systems:
        for setting, label in (("weak", "weak only (clip tags of the 10 % split)"), ("strong", "strong, 180 validation clips")):
            rs = [r for r in by[s] if setting in r]
            if not rs:
                continue
            ratio = np.mean([r[setting]["n_events"] / max(1, r[setting]["n_ref"]) for r in rs])
            L.append(f"| {s} | {label} | {ms(rs, setting + '.event_f1_merged', folds)} | "
                     f"{ms(rs, setting + '.event_f1_merged_macro', folds)} | {ms(rs, setting + '.event_f1', folds)} | "
                     f"{ms(rs, setting + '.event_f1_macro', folds)} | "
                     f"{ms(rs, setting + '.event_er', folds)} | {ms(rs, setting + '.segment_f1', folds)} | "
                     f"{ms(rs, setting + '.segment_er', folds)} | {ms(rs, setting + '.intersection_f1', folds)} | {ratio:.2f} |")
    L.append("")
    if "default" in by and any("weak" in r for r in by["default"]):
        L.append("Per tag, `default` (mean over folds and seeds):\n")
        L.append("| | " + " | ".join(classes) + " |")
        L.append("|---" * (len(classes) + 1) + "|")
        for setting in ("weak", "strong"):
            rs = [r for r in by["default"] if setting in r]
            if rs:
                L.append(f"| event F1, {setting} | " + " | ".join(fmt(x) for x in np.nanmean([r[setting]['event_f1_per_class'] for r in rs], axis=0)) + " |")
                L.append(f"| segment F1, {setting} | " + " | ".join(fmt(x) for x in np.nanmean([r[setting]['segment_f1_per_class'] for r in rs], axis=0)) + " |")
        for name, label in (("threshold", "event threshold"), ("threshold_low", "low threshold"), ("median_filter", "median filter s"),
                            ("min_gap", "min gap s"), ("min_duration", "min duration s"), ("clip_threshold", "clip gate")):
            for setting in ("weak", "strong"):
                vals = [r[f"{setting}_settings"][name] for r in by["default"] if f"{setting}_settings" in r and r[f"{setting}_settings"].get(name) is not None]
                if vals:
                    L.append(f"| {label}, {setting} (median) | " + " | ".join(fmt(x, 2) for x in np.median(vals, axis=0)) + " |")
        L.append("")
    att = [s for s in systems if any(r.get("collapse") for r in by[s])]
    if att:
        L.append("## Attention and z_loc on the scored folds\n")
        L.append("Share of frames whose `z_loc` argmax is each tag (background slot excluded); mean `z_att` inside "
                 "and outside true events; frame AUC of `z_att` for 'some event is active'.\n")
        L.append("| system | z_loc argmax share (" + ", ".join(classes) + ") | z_att event | z_att non-event | z_att AUC |")
        L.append("|---|---|---|---|---|")
        for s in att:
            cs = [r["collapse"] for r in by[s] if r.get("collapse")]
            share = ", ".join(fmt(x, 2) for x in np.mean([c["loc_argmax_share"] for c in cs], axis=0)) if "loc_argmax_share" in cs[0] else "–"
            a = [c for c in cs if "att_event" in c]
            L.append(f"| {s} | {share} | {fmt(np.mean([c['att_event'] for c in a])) if a else '–'} | "
                     f"{fmt(np.mean([c['att_nonevent'] for c in a])) if a else '–'} | {fmt(np.mean([c['att_frame_auc'] for c in a])) if a else '–'} |")
        L.append("")
    L.append("## Learning curves: validation macro EER of the 10 % split, per epoch (mean over folds and seeds)\n")
    L.append("| system | " + " | ".join(f"ep {e}" for e in (1, 5, 10, 20, 40, 60, 80, 100)) + " | last |")
    L.append("|---" * 10 + "|")
    for s in systems:
        hs = [r["history"] for r in by[s] if r.get("history")]
        if not hs or "val_eer" not in hs[0][0]:
            continue
        cells = []
        for e in (1, 5, 10, 20, 40, 60, 80, 100):
            v = [h[e - 1]["val_eer"] for h in hs if len(h) >= e]
            cells.append(fmt(float(np.mean(v))) if len(v) == len(hs) else "–")
        L.append(f"| {s} | " + " | ".join(cells) + f" | {fmt(float(np.mean([h[-1]['val_eer'] for h in hs])))} |")
    L.append("")
    L.append("## Time\n")
    L.extend(full_fit_lines(getattr(args, "full_fits", [])))
    if getattr(args, "full_fits", []):
        L.append("")
    L.append("Cross-validation fits (1 torch thread per process, two or more processes sharing the 2 cores, so "
             "each is slower than a fit alone):\n")
    L.append("| system | fit, min (mean, min-max) | epochs | clips/s in training | scoring 600 clips, s |")
    L.append("|---|---|---|---|---|")
    for s in systems:
        fits = [r["fit_s"] for r in by[s]]
        ep = [r.get("n_epochs") for r in by[s] if r.get("n_epochs")]
        speed = [r["n_train"] * 0.9 * r["n_epochs"] / r["fit_s"] for r in by[s] if r.get("n_epochs")]
        pred = [r["predict_s"] for r in by[s] if "predict_s" in r]
        L.append(f"| {s} | {np.mean(fits) / 60:.1f} ({min(fits) / 60:.1f}-{max(fits) / 60:.1f}) | {fmt(float(np.mean(ep)), 0) if ep else '–'} | "
                 f"{fmt(float(np.mean(speed)), 1) if speed else '–'} | {fmt(float(np.mean(pred)), 1) if pred else '–'} |")
    L.append("")
    plot_rows = [r for r in rows if r.get("plot")]
    if args.plot and plot_rows:
        L.append("## Example clip\n")
        cap = make_plot(args, d, plot_rows[0])
        rel = os.path.relpath(args.plot, Path(args.out_md).parent) if args.out_md else args.plot
        L.append(f"![{cap}]({rel})\n\n{cap}\n")
    text = "\n".join(L)
    if args.out_md and Path(args.out_md).is_file():
        # The learning curves of benchmark_labels.py and the fold-4 comparison of
        # compare_systems.py live in marked blocks of this page: keep them.
        old = Path(args.out_md).read_text()
        for start, end in (("<!-- system-comparison:start -->", "<!-- system-comparison:end -->"),
                           ("<!-- label-curves:start -->", "<!-- label-curves:end -->")):
            if start in old and end in old:
                text = text.rstrip("\n") + "\n\n" + start + old.split(start, 1)[1].split(end, 1)[0] + end + "\n"
        # ... and the uncut full-fit timing, when these results hold none
        if not getattr(args, "full_fits", []) and FULL_FIT_START in old and FULL_FIT_END in old and "## Time\n" in text:
            block = FULL_FIT_START + old.split(FULL_FIT_START, 1)[1].split(FULL_FIT_END, 1)[0] + FULL_FIT_END
            text = _after_time_heading(text, block)
    if args.out_md:
        Path(args.out_md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out_md).write_text(text)
        log(f"wrote {args.out_md}")
    if args.out_json:
        keys = ("eer", "within_clip_auc", "frame_ap", "psds1", "psds2", "weak.event_f1_merged",
                "weak.event_f1_merged_macro", "weak.event_f1", "weak.segment_f1", "strong.event_f1_merged",
                "strong.event_f1", "strong.segment_f1")
        summary = {s: {k: seed_means(by[s], k, folds) for k in keys} for s in systems}
        spread = {s: {key: {"fold_sd": fold_sd(by[s], key, folds), "interval_95": cv_interval(by[s], rkey, folds)}
                      for key, rkey, _ in HEADLINE} for s in systems}
        paired = {s: {key: dict(zip(("difference", "low", "high", "pairs"),
                                    paired_cv_difference(by[s], by["default"], key, rkey, folds)))
                      for key, rkey, _ in HEADLINE}
                  for s in systems if s != "default" and "default" in by}
        Path(args.out_json).write_text(json.dumps(to_jsonable({"summary": summary, "spread": spread,
                                                               "paired_to_default": paired, "folds": folds,
                                                               "seeds": seeds}), indent=1))
        log(f"wrote {args.out_json}")
    return text


def make_plot(args, d, row):
    from skattloc.plotting import plot_localization

    i = row["plot"]["index"]
    name = d["filenames"][i]
    fig = plot_localization(
        d["X"][i], np.asarray(row["plot"]["scores"]), d["classes"], events=[e for e in d["strong"] if e[0] == name],
        attention=None if row["plot"]["att"] is None else np.asarray(row["plot"]["att"]),
        timing=d["timing"], clip_scores=np.asarray(row["plot"]["clip"]),
        title=f"{name} (fold {row['fold']}, default recipe trained on the other folds' tags)",
        score_label="localize()",
    )
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=110)
    det = ", ".join(f"{e[3]} {e[1]:.2f}-{e[2]:.2f} s" for e in row["plot"]["events"]) or "none"
    return (f"Clip `{name}` of fold {row['fold']}, scored by the default recipe trained on the other folds: log-mel "
            f"spectrogram, `localize()` per tag with the true events from strong.tsv (shaded), and the events "
            f"`detect_events` wrote with weak-only post-processing: {det}.")


# ----------------------------------------------------------------------------- main
def _relative_paths(command):
    """A recorded command with the absolute paths inside this repository written relative to
    it (a reader's machine has no such folder)."""
    root = str(Path(__file__).resolve().parent.parent) + "/"
    return command.replace(root, "")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", nargs="?", help="domestic-mix folder (audio/, weak.csv, strong.tsv); not needed when --features-cache exists")
    p.add_argument("--features-cache", default=None, help="float16 .npz of log-mel + labels; written if absent, reused if present")
    p.add_argument("--precompute-only", action="store_true", help="write --features-cache and exit")
    p.add_argument("--systems", default="default", help="comma list among " + ",".join(SYSTEMS))
    p.add_argument("--folds", default="all", help="folds to score, e.g. 1,2 (default: all)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--results", default="out/benchmark.jsonl", help="JSON lines, one per (system, fold, seed); appended, jobs already there are skipped")
    p.add_argument("--report", default=None, help="comma list of results files: write the report, train nothing")
    p.add_argument("--out-md", default=None)
    p.add_argument("--out-json", default=None)
    p.add_argument("--plot", default=None, help="PNG of one scored clip (from the default system's first job)")
    p.add_argument("--accelerator", default="auto")
    p.add_argument("--bootstrap", type=int, default=1000,
                   help="resamples of each scored fold's clips for the report's confidence intervals (0: none)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--max-epochs", type=int, default=None, help="override every neural system's max_epochs (smoke tests)")
    p.add_argument("--param", action="append", default=[], help="KEY=JSON override of every neural system's parameters (smoke tests), e.g. rnn_hidden=8")
    p.add_argument("--save-models", default=None, metavar="DIR",
                   help="save each fitted tagger (before strong tuning) to DIR/SYSTEM_foldF_seedS.skattloc")
    p.add_argument("--full-fit", action="store_true",
                   help="instead of cross-validation: time the default recipe's fit on every clip (all folds), "
                   "with --threads torch threads, and append the timing to --results")
    p.add_argument("--max-clips", type=int, default=None, help="use only this many clips (the first of each fold), for smoke tests")
    p.add_argument("--n-jobs", type=int, default=None, help="joblib jobs for log-mel extraction")
    return p.parse_args(argv)


def full_fit(args, d, info):
    """The default recipe's fit on all clips: the time a user waits for ``skattloc fit DATA``."""
    import torch

    tagger = make_tagger("default", 0, args)
    classes = d["classes"]
    tags = [[classes[k] for k in np.flatnonzero(y)] for y in d["Y"]]
    t = time.perf_counter()
    tagger.fit(d["X"], tags)
    fit_s = time.perf_counter() - t
    row = {"system": "default", "full_fit": True, "n_clips": len(d["X"]), "fit_s": fit_s, "n_epochs": tagger.n_epochs_,
           "max_epochs": tagger.max_epochs,
           "threads": torch.get_num_threads(), "machine": f"{info['cpu']} ({info['cpu_cores']} cores)",
           "history": [{k: round(float(v), 5) for k, v in h.items()} for h in tagger.history_],
           "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    _append(args.results, row)
    log(f"default recipe on all {len(d['X'])} clips: fit {fit_s / 60:.1f} min, {tagger.n_epochs_} epochs, "
        f"{torch.get_num_threads()} torch threads")
    return row


def _append(path, row):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(json.dumps(to_jsonable(row)) + "\n")
        fh.flush()
        fcntl.flock(fh, fcntl.LOCK_UN)


def _denull(obj):
    """JSON null inside lists (a NaN metric) back to NaN; other values unchanged."""
    if isinstance(obj, dict):
        return {k: _denull(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [float("nan") if v is None else _denull(v) for v in obj]
    return obj


def _read_rows(paths):
    rows = []
    for p in paths.split(","):
        if Path(p).is_file():
            rows += [_denull(json.loads(line)) for line in open(p) if line.strip()]
    return rows


def main(argv=None):
    args = parse_args(argv)
    d = load_data(args)
    if args.precompute_only:
        return None
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from skattloc.events import events_to_frames

    info = machine_info(args.accelerator)
    truth = events_to_frames(d["strong"], d["filenames"], d["classes"], d["X"].shape[1], timing=d["timing"]).astype(np.uint8)
    if args.report:
        rows = _read_rows(args.report)
        args.full_fits = [r for r in rows if r.get("full_fit")]
        rows = [r for r in rows if not r.get("full_fit")]
        if not rows and args.full_fits and args.out_md:  # timings only: into the existing page
            return write_full_fit_block(args.out_md, args.full_fits)
        if not rows:
            sys.exit(f"error: no results in {args.report}")
        return write_report(args, rows, d, info)
    if args.full_fit:
        return full_fit(args, d, info)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    bad = [s for s in systems if s not in SYSTEMS]
    if bad:
        sys.exit(f"error: unknown systems {bad}; choose among {list(SYSTEMS)}")
    all_folds = sorted(int(f) for f in np.unique(d["folds"]))
    args.fold_list = all_folds if args.folds == "all" else [int(f) for f in args.folds.split(",")]
    if not set(args.fold_list) <= set(all_folds):
        sys.exit(f"error: --folds {args.fold_list} not among the data's folds {all_folds}")
    args.seed_list = [int(s) for s in args.seeds.split(",")]
    args.plot_data = True
    done = {(r["system"], r["fold"], r["seed"]) for r in _read_rows(args.results) if not r.get("full_fit")}
    command = _relative_paths("python " + " ".join(
        shlex.quote(a) for a in (sys.argv if argv is None else ["examples/benchmark_domestic_mix.py", *argv])))
    log(f"machine: {info}")
    for seed in args.seed_list:
        for fold in args.fold_list:
            for system in systems:
                if (system, fold, seed) in done:
                    log(f"skip {system} fold {fold} seed {seed}: already in {args.results}")
                    continue
                t = time.perf_counter()
                row = run_job(system, fold, seed, args, d, truth)
                row.update(command=command, machine=f"{info['cpu']} ({info['cpu_cores']} cores, torch threads {torch.get_num_threads()})"
                           + (f", GPU {info['gpu']}" if info.get("gpu") else ""), wall_s=time.perf_counter() - t,
                           finished=time.strftime("%Y-%m-%d %H:%M:%S"))
                _append(args.results, row)
                msg = f"{system} fold {fold} seed {seed}: macro EER {_get(row, 'eer'):.3f}"
                if "weak" in row:
                    msg += (f", within-clip AUC {_get(row, 'within_clip_auc'):.3f}, PSDS1 {row['psds1']:.3f}, "
                            f"event F1 weak {row['weak']['event_f1']:.3f} / strong {_get(row, 'strong.event_f1'):.3f}, "
                            f"segment F1 weak {row['weak']['segment_f1']:.3f}")
                log(msg + f" ({row['wall_s']:.0f} s)")
    return None


if __name__ == "__main__":
    main()
