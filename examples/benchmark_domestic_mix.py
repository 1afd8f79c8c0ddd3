"""Reproduce the paper's comparison on domestic-mix, and measure localization.

Xu et al. (Interspeech 2017) claim that attention and localization lower the tagging EER
of the CGRNN, and that the weakly trained model finds *when* events happen. domestic-mix
(2400 real-recording clips, 4 source-disjoint folds, clip tags AND exact event times)
lets us score both claims: train on the clip tags of 3 folds, score the 4th, 4 times.

Systems (``--variants``, comma-separated):

- ``mean``: the CGRNN baseline (eq. 2); ``att``: attention only (eq. 3-5);
  ``att_loc``: the paper's full model (eq. 3-8), all at the paper's training settings.
- ``gmm``: the DCASE 2016 Task 4 baseline (MFCC frames, per-tag GMM vs background GMM,
  log-likelihood ratio), :class:`skattloc.baselines.GMMTagger`.
- ``att_loc_sigmoid``: the paper's model with a per-class sigmoid ``z_loc`` instead of the
  softmax (the collapse fix), paper training otherwise.
- ``improved``: ``att_loc_sigmoid`` trained with a cosine learning-rate schedule,
  SpecAugment and mixup, for ``--improved-epochs``; ``mean_improved``: the CGRNN baseline
  with the same training, to separate the model from the training recipe.
- ``att_loc_wm`` / ``att_loc_sigmoid_wm``: eq. (8) divided by ``sum_t z_att z_loc``
  (``loc_denominator="att_loc"``), a true weighted mean that ``z_att`` does not cap.
- ``mean_es`` / ``att_loc_es``: early stopping on a random 10 % of the training folds.

Per system it reports per-tag and macro EER (shaped like the paper's Tables 2-3) and, for
the neural systems and the GMM, frame-level AP and AUC, within-clip AUC, 1 s segment F1/ER
and event F1 for several frame scores (``O(t)``, ``z_att O``, ``z_att O z_loc``, ``z_loc``,
the clip score copied to every frame), with per-class thresholds tuned on the TRAINING
folds' predictions only. For ``att_loc`` systems it also reports the z_loc collapse
statistics. Results go to a markdown file (``--out-md``), a JSON file and a figure.

Typical use::

    # once, where the audio is (librosa needed): compute the log-mel cache
    python examples/benchmark_domestic_mix.py ../shared/data/domestic-mix \\
        --features-cache out/domestic_mix_logmel.npz --precompute-only
    # anywhere (audio and librosa not needed once the cache exists)
    python examples/benchmark_domestic_mix.py --features-cache out/domestic_mix_logmel.npz \\
        --accelerator gpu --variants gmm,mean,att,att_loc,att_loc_sigmoid,improved,mean_improved \\
        --epochs 20 --improved-epochs 30 --out-md docs/benchmarks.md \\
        --plot docs/images/domestic_mix_localization.png

On a GPU the networks train in the main process while worker processes (``--workers``)
fit the GMMs and compute the metrics. On a CPU with few cores, set ``OMP_NUM_THREADS=1``
when other jobs share the cores: several threads per op on oversubscribed cores made
training ~10x slower when measured here.
"""
from __future__ import annotations

import argparse
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

PAPER_NET = dict(n_filters=128, kernel_size=30, rnn_hidden=128, rnn_layers=3, dense_units=500, dropout=0.2)
PAPER_TRAIN = dict(learning_rate=1e-3, batch_size=100)
# Training choices of the "improved" systems, fixed a priori (not tuned on the folds).
IMPROVED_TRAIN = dict(lr_schedule="cosine", spec_augment=2, time_mask_width=10, freq_mask_width=6, mixup_alpha=0.2)
NEURAL = {
    "mean": dict(pooling="mean"),
    "att": dict(pooling="att"),
    "att_loc": dict(pooling="att_loc"),
    "att_loc_sigmoid": dict(pooling="att_loc", loc_activation="sigmoid"),
    "improved": dict(pooling="att_loc", loc_activation="sigmoid", **IMPROVED_TRAIN),
    "mean_improved": dict(pooling="mean", **IMPROVED_TRAIN),
    # eq. (8) as a true weighted mean: divide by sum_t z_att z_loc (no cap by z_att).
    "att_loc_wm": dict(pooling="att_loc", loc_denominator="att_loc"),
    "att_loc_sigmoid_wm": dict(pooling="att_loc", loc_activation="sigmoid", loc_denominator="att_loc"),
    # Early stopping on a random 10 % of the training folds (never the scored fold).
    "mean_es": dict(pooling="mean", validation_fraction=0.1, early_stopping=True, patience=5),
    "att_loc_es": dict(pooling="att_loc", validation_fraction=0.1, early_stopping=True, patience=5),
}
IMPROVED = {"improved", "mean_improved"}
ALL_VARIANTS = ["gmm", *NEURAL]
SCORE_NAMES = {
    "frame": "O(t)",
    "att_frame": "z_att·O",
    "paper": "z_att·O·z_loc",
    "loc": "z_loc",
    "clip": "clip score on every frame",
    "llr": "frame LLR",
}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------- data
def load_data(args):
    """Features, tags, folds and strong labels, from the cache when it exists."""
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


# ----------------------------------------------------------------------------- systems
def make_neural(name, args):
    from skattloc import AttLocTagger

    net = dict(PAPER_NET)
    for key in ("n_filters", "rnn_hidden", "rnn_layers", "dense_units"):
        if getattr(args, key) is not None:
            net[key] = getattr(args, key)
    train = dict(PAPER_TRAIN, batch_size=args.batch_size)
    if args.learning_rate is not None:
        train["learning_rate"] = args.learning_rate
    epochs = args.improved_epochs if (name in IMPROVED and args.improved_epochs) else args.epochs
    return AttLocTagger(
        **net, **train, **NEURAL[name], max_epochs=epochs, accelerator=args.accelerator,
        precision=args.precision, random_state=args.seed,
    )


def _curve_callback(Xte, Yte):
    """A Lightning callback recording the scored fold's macro EER after every epoch.

    Diagnostic only (``--curve``): it shows how EER moves with epochs; nothing is chosen by it.
    """
    import torch
    from lightning.pytorch.callbacks import Callback

    from skattloc.metrics import equal_error_rate

    class HeldOutEER(Callback):
        def __init__(self):
            self.eer = []

        def on_train_epoch_end(self, trainer, pl_module):
            model = pl_module.model
            was_training = model.training
            model.eval()
            outs = []
            with torch.no_grad():
                for i in range(0, len(Xte), 200):
                    x = torch.from_numpy(Xte[i : i + 200]).to(pl_module.device)
                    outs.append(model(x).clip.float().cpu().numpy())
            model.train(was_training)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.eer.append(float(equal_error_rate(Yte, np.concatenate(outs), average="macro")))

    return HeldOutEER()


def run_neural(name, args, Xtr, Ytr, Xte, Yte=None):
    """Fit one neural system and return its clip scores and frame scores (train and test)."""
    tagger = make_neural(name, args)
    curve = _curve_callback(Xte, Yte) if (args.curve and Yte is not None) else None
    if curve is not None:
        tagger.set_params(callbacks=[curve])
    t = time.perf_counter()
    tagger.fit(Xtr, Ytr)
    fit_s = time.perf_counter() - t
    losses = [round(r["train_loss"], 4) for r in tagger.history_]
    log(f"  {name}: fit {fit_s:.1f} s ({tagger.n_epochs_} epochs, {fit_s / max(1, tagger.n_epochs_):.2f} s/epoch); "
        f"train loss per epoch: {losses}")
    t = time.perf_counter()
    outs = {}
    for part, X in (("train", Xtr), ("test", Xte)):
        fo = tagger.frame_outputs(X)
        o = {"clip": np.stack([r["clip"] for r in fo]), "frame": np.stack([r["frame"] for r in fo])}
        if "att" in fo[0]:
            o["att"] = np.stack([r["att"] for r in fo])
            o["att_frame"] = o["att"][..., None] * o["frame"]
        if "loc" in fo[0]:
            o["loc"] = np.stack([r["loc"] for r in fo])
            o["paper"] = np.stack([r["weighted"] for r in fo])
        outs[part] = o
    pred_s = time.perf_counter() - t
    scores = {k: {p: outs[p][k] for p in outs} for k in ("frame", "att_frame", "paper", "loc") if k in outs["test"]}
    add_clip_score(scores, outs["train"]["clip"], outs["test"]["clip"])
    return dict(
        clip=outs["test"]["clip"], scores=scores, att=outs["test"].get("att"), loc=outs["test"].get("loc"),
        history=tagger.history_, fit_s=fit_s, predict_s=pred_s, n_epochs=tagger.n_epochs_,
        curve=curve.eer if curve is not None else None,
    )


def add_clip_score(scores, clip_train, clip_test):
    """The reference frame score: each clip's clip score copied to all its frames."""
    n_frames = next(iter(scores.values()))["test"].shape[1]
    scores["clip"] = {
        "train": np.repeat(clip_train[:, None, :], n_frames, axis=1),
        "test": np.repeat(clip_test[:, None, :], n_frames, axis=1),
    }


def gmm_job(Xtr, Ytr, Xte, Yte, truth_tr, truth_te, meta, te_names, median_filter, seed, n_jobs):
    """Fit and score the GMM baseline on one fold (runs in a worker process)."""
    from scipy.special import expit

    from skattloc.baselines import GMMTagger

    from threadpoolctl import threadpool_limits

    gmm = GMMTagger(n_components=8, n_mfcc=14, n_jobs=n_jobs, random_state=seed)
    t = time.perf_counter()
    with threadpool_limits(2):  # several folds run side by side
        gmm.fit(Xtr, Ytr)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    llr_tr, llr_te = np.stack(gmm.frame_llr(Xtr)), np.stack(gmm.frame_llr(Xte))
    pred_s = time.perf_counter() - t
    clip = expit(llr_te.mean(axis=1))
    scores = {"llr": {"train": expit(llr_tr), "test": expit(llr_te)}}
    add_clip_score(scores, expit(llr_tr.mean(axis=1)), clip)
    out = evaluate_job(scores, clip, Yte, truth_tr, truth_te, meta, te_names, median_filter)
    out.update(collapse={}, history=[], fit_s=fit_s, predict_s=pred_s, n_epochs=None, score_names=list(scores))
    return out


# ----------------------------------------------------------------------------- metrics
def evaluate_job(scores, clip_te, Y_te, truth_tr, truth_te, meta, te_names, median_filter):
    """EER of the clip scores and localization metrics of every frame score (worker-safe)."""
    from skattloc.metrics import equal_error_rate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eer = equal_error_rate(Y_te, clip_te, average=None)
    loc = {
        s: localization_metrics(v["train"], v["test"], truth_tr, truth_te, meta, te_names, median_filter)
        for s, v in scores.items()
    }
    return {"eer": eer, "loc": loc}


def localization_metrics(score_tr, score_te, truth_tr, truth_te, d, te_names, median_filter):
    from skattloc.events import frames_to_events, tune_thresholds
    from skattloc.metrics import (
        event_based_metrics,
        frame_auc,
        frame_average_precision,
        segment_based_metrics,
        within_clip_auc,
    )

    classes = d["classes"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {
            "frame_ap": frame_average_precision(truth_te, score_te, average=None),
            "frame_auc": frame_auc(truth_te, score_te, average=None),
            "within_clip_auc": within_clip_auc(truth_te, score_te, average=None),
        }
        # Thresholds from the TRAINING folds' predictions only.
        thr = tune_thresholds(truth_tr, score_tr)
    est = frames_to_events(
        score_te, classes, hop_s=d["hop_s"], offset_s=d["offset_s"], threshold=thr,
        median_filter=median_filter if median_filter > 1 else None,
        filenames=te_names, clip_duration=d["duration"],
    )
    names = set(te_names)
    ref = [e for e in d["strong"] if e[0] in names]
    seg = segment_based_metrics(ref, est, classes, segment_length=1.0, filenames=te_names, durations=d["duration"])
    ev = event_based_metrics(ref, est, classes, t_collar=0.2, percentage_of_length=0.2, filenames=te_names)
    out.update(
        thresholds=np.asarray(thr, dtype=float),
        segment_f1=seg["f_measure"], segment_er=seg["error_rate"], event_f1=ev["f_measure"],
        segment_f1_per_class=np.array([seg["class_wise"][c]["f_measure"] for c in classes]),
    )
    return out


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


# ----------------------------------------------------------------------------- report
def fmt(x, nd=3):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:.{nd}f}"


def mean_sd(values):
    v = np.asarray(values, dtype=float)
    return float(np.nanmean(v)), float(np.nanstd(v)) if len(v) > 1 else float("nan")


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


def write_markdown(path, res, args, d, info, wall_s, reduced):
    classes = d["classes"]
    variants = res["variants"]
    folds = res["folds"]
    L = []
    L.append("# Benchmarks: domestic-mix, cross-validation over its source-disjoint folds\n")
    L.append("Generated by `examples/benchmark_domestic_mix.py`; every number below was measured by the "
             "run described here. Re-run the command to reproduce it.\n")
    if reduced:
        L.append(f"> **Reduced configuration:** {reduced}. These numbers check the pipeline and show "
                 "trends; they are not the full benchmark.\n")
    L.append("## Run\n")
    L.append(f"- Command: `{res['command']}`")
    gpu = f", GPU: {info['gpu']}" if info.get("gpu") else ", no GPU"
    L.append(f"- Machine: {info['cpu']}, {info['cpu_cores']} CPU cores (torch threads {info['torch_threads']}){gpu}")
    L.append(f"- Software: Python {info['python']}, torch {info['torch']}, lightning {info.get('lightning', '?')}")
    L.append(f"- Accelerator `{args.accelerator}`, precision `{args.precision}`, seed {args.seed}")
    L.append(f"- Data: {len(d['X'])} clips, folds {folds} scored in turn (train on the other folds, weak labels "
             f"only), {len(d['X'][0])} frames x {d['X'].shape[-1]} mel bands per clip")
    L.append(f"- Epochs: {args.epochs} (paper systems)" + (f", {args.improved_epochs or args.epochs} (improved systems)" if IMPROVED & set(variants) else ""))
    L.append(f"- Total wall time: {wall_s / 60:.1f} min ({wall_s:.0f} s), started {res['started']}\n")
    L.append("Systems: " + "; ".join(f"`{v}`: {describe(v)}" for v in variants) + ".\n")

    # Tables 2-3 shape
    L.append("## Tagging: equal error rate per tag (lower is better)\n")
    L.append("Mean over the scored folds of each fold's EER (DCASE 2016 Task 4 definition, "
             "`skattloc.metrics.equal_error_rate`); `sd` is the standard deviation of the macro EER over folds.\n")
    L.append("| system | " + " | ".join(classes) + " | ave | sd |")
    L.append("|---" * (len(classes) + 3) + "|")
    for v in variants:
        per = np.array([res["per_fold"][v][f]["eer"] for f in folds])  # (folds, classes)
        macro = np.nanmean(per, axis=1)
        m, s = mean_sd(macro)
        L.append(f"| {v} | " + " | ".join(fmt(x, 3) for x in np.nanmean(per, axis=0)) + f" | **{fmt(m)}** | {fmt(s)} |")
    L.append("")
    L.append("Macro EER per scored fold:\n")
    L.append("| system | " + " | ".join(f"fold {f}" for f in folds) + " |")
    L.append("|---" * (len(folds) + 1) + "|")
    for v in variants:
        L.append(f"| {v} | " + " | ".join(fmt(float(np.nanmean(res['per_fold'][v][f]['eer']))) for f in folds) + " |")
    L.append("")
    if "att_loc" in variants and "mean" in variants:
        diff = [float(np.nanmean(res["per_fold"]["att_loc"][f]["eer"]) - np.nanmean(res["per_fold"]["mean"][f]["eer"])) for f in folds]
        L.append(f"att_loc − mean, macro EER per fold: {', '.join(f'{x:+.3f}' for x in diff)} "
                 f"(mean {np.mean(diff):+.3f}; negative means att_loc is better, as the paper claims).\n")

    # Localization
    L.append("## Localization against strong.tsv\n")
    L.append("Threshold-free: frame AP and frame AUC pooled over all frames of the scored fold (macro over "
             "tags); within-clip AUC, per tag over the clips that contain it, then macro (a score constant "
             "within a clip gets 0.5). Thresholded: per-tag thresholds maximizing frame F1 on the TRAINING "
             f"folds' predictions, median filter {args.median_filter} frames, then 1 s segment F1/ER and "
             "event F1 (onset collar 0.2 s, offset collar max(0.2 s, 20 %)). Mean over scored folds.\n")
    L.append("| system | frame score | frame AP | frame AUC | within-clip AUC | segment F1 | segment ER | event F1 |")
    L.append("|---|---|---|---|---|---|---|---|")
    for v in variants:
        for sname in res["score_names"][v]:
            vals = [res["per_fold"][v][f]["loc"][sname] for f in folds]
            def avg(key):
                return float(np.nanmean([np.nanmean(x[key]) for x in vals]))
            L.append(f"| {v} | {SCORE_NAMES.get(sname, sname)} | {fmt(avg('frame_ap'))} | {fmt(avg('frame_auc'))} | "
                     f"{fmt(avg('within_clip_auc'))} | {fmt(avg('segment_f1'))} | {fmt(avg('segment_er'))} | {fmt(avg('event_f1'))} |")
    L.append("")
    L.append("Within-clip AUC per tag (mean over scored folds):\n")
    L.append("| system | frame score | " + " | ".join(classes) + " |")
    L.append("|---" * (len(classes) + 2) + "|")
    for v in variants:
        for sname in res["score_names"][v]:
            if sname == "clip":
                continue
            per = np.nanmean([res["per_fold"][v][f]["loc"][sname]["within_clip_auc"] for f in folds], axis=0)
            L.append(f"| {v} | {SCORE_NAMES.get(sname, sname)} | " + " | ".join(fmt(x) for x in per) + " |")
    L.append("")

    # Collapse
    att_variants = [v for v in variants if res["per_fold"][v][folds[0]]["collapse"]]
    if att_variants:
        L.append("## Attention and z_loc statistics on the scored folds\n")
        L.append("Share of frames whose `z_loc` argmax is each tag; mean normalized entropy of `z_loc` over "
                 "tags (1 = uniform, 0 = one-hot; a sigmoid `z_loc` is normalized to sum 1 first); mean "
                 "`z_att` on frames inside any true event and outside all events; frame AUC of `z_att` "
                 "for 'any event active'.\n")
        L.append("| system | z_loc argmax share (" + ", ".join(classes) + ") | z_loc entropy | z_att event | z_att non-event | z_att AUC |")
        L.append("|---|---|---|---|---|---|")
        for v in att_variants:
            cs = [res["per_fold"][v][f]["collapse"] for f in folds]
            share = ", ".join(fmt(x, 2) for x in np.mean([c["loc_argmax_share"] for c in cs], axis=0)) if "loc_argmax_share" in cs[0] else "–"
            ent = fmt(float(np.mean([c["loc_norm_entropy"] for c in cs]))) if "loc_norm_entropy" in cs[0] else "–"
            L.append(f"| {v} | {share} | {ent} | {fmt(np.mean([c['att_event'] for c in cs]))} | "
                     f"{fmt(np.mean([c['att_nonevent'] for c in cs]))} | {fmt(np.mean([c['att_frame_auc'] for c in cs]))} |")
        L.append("")

    # Learning curves and time
    neural = [v for v in variants if v != "gmm"]
    if neural:
        L.append("## Learning curves: training loss per epoch (mean over folds)\n")
        n_ep = max(len(res["per_fold"][v][f]["history"]) for v in neural for f in folds)
        show = sorted({0, 1, 2, 4, 9, 14, 19, 29, 39, 59, 79, n_ep - 1} & set(range(n_ep)))
        L.append("| system | " + " | ".join(f"ep {e + 1}" for e in show) + " |")
        L.append("|---" * (len(show) + 1) + "|")
        for v in neural:
            rows = []
            for e in show:
                xs = [res["per_fold"][v][f]["history"][e]["train_loss"] for f in folds if len(res["per_fold"][v][f]["history"]) > e]
                rows.append(fmt(float(np.mean(xs))) if xs else "–")
            L.append(f"| {v} | " + " | ".join(rows) + " |")
        L.append("")
    curved = [v for v in neural if all(res["per_fold"][v][f].get("curve") for f in folds)] if neural else []
    if curved:
        L.append("## Diagnostic: scored-fold macro EER after each epoch (mean over folds)\n")
        L.append("Recorded with `--curve` to see how tagging moves with training time. Nothing above was "
                 "chosen with it: every system trains for its fixed number of epochs (or early-stops on "
                 "its own training-fold split).\n")
        n_ep = max(len(res["per_fold"][v][f]["curve"]) for v in curved for f in folds)
        show = sorted({0, 1, 2, 4, 9, 14, 19, 24, 29, 39, 59, 79, n_ep - 1} & set(range(n_ep)))
        L.append("| system | " + " | ".join(f"ep {e + 1}" for e in show) + " | best epoch |")
        L.append("|---" * (len(show) + 2) + "|")
        for v in curved:
            rows, means = [], []
            for e in range(n_ep):
                xs = [res["per_fold"][v][f]["curve"][e] for f in folds if len(res["per_fold"][v][f]["curve"]) > e]
                means.append(float(np.mean(xs)) if len(xs) == len(folds) else float("nan"))
            rows = [fmt(means[e]) for e in show]
            best = int(np.nanargmin(means)) + 1
            L.append(f"| {v} | " + " | ".join(rows) + f" | {best} ({fmt(means[best - 1])}) |")
        L.append("")
    L.append("## Time per fold (fit / scoring, seconds)\n")
    L.append("| system | " + " | ".join(f"fold {f}" for f in folds) + " | mean fit s/epoch |")
    L.append("|---" * (len(folds) + 2) + "|")
    for v in variants:
        cells = [f"{res['per_fold'][v][f]['fit_s']:.1f} / {res['per_fold'][v][f]['predict_s']:.1f}" for f in folds]
        eps = [res["per_fold"][v][f]["fit_s"] / res["per_fold"][v][f]["n_epochs"] for f in folds if res["per_fold"][v][f]["n_epochs"]]
        L.append(f"| {v} | " + " | ".join(cells) + f" | {fmt(float(np.mean(eps)), 2) if eps else '–'} |")
    L.append("")
    if res.get("plot"):
        L.append("## Example clip\n")
        L.append(f"![{res['plot']['caption']}]({res['plot']['rel']})\n")
        L.append(res["plot"]["caption"] + "\n")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(L))


def describe(v):
    return {
        "gmm": "DCASE 2016 baseline, 14 MFCCs, 8-component GMM per tag vs background, mean frame LLR",
        "mean": "CGRNN, mean pooling (eq. 2)",
        "att": "attention pooling (eq. 3-5)",
        "att_loc": "attention + softmax localization (eq. 3-8, the paper)",
        "att_loc_sigmoid": "att_loc with a per-class sigmoid z_loc, paper training",
        "improved": "att_loc_sigmoid + cosine LR + SpecAugment (2+2 masks) + mixup (alpha 0.2)",
        "mean_improved": "mean pooling + cosine LR + SpecAugment (2+2 masks) + mixup (alpha 0.2)",
        "att_loc_wm": "att_loc with eq. (8) divided by sum z_att z_loc (a true weighted mean)",
        "att_loc_sigmoid_wm": "att_loc_sigmoid with eq. (8) divided by sum z_att z_loc",
        "mean_es": "mean pooling, early stopping on val_loss of a random 10 % of the training folds (patience 5)",
        "att_loc_es": "att_loc, early stopping on val_loss of a random 10 % of the training folds (patience 5)",
    }[v]


def make_plot(args, d, fold, te, run, variant):
    from skattloc.plotting import plot_localization

    classes = d["classes"]
    names = [d["filenames"][i] for i in te]
    ev_by = {}
    for e in d["strong"]:
        ev_by.setdefault(e[0], []).append(e)
    # A clip with events of at least two different tags, all short enough to show "when".
    pick = 0
    for limit in (0.4, 0.6, 0.8, 1.01):
        cands = [j for j, n in enumerate(names) if len({e[3] for e in ev_by.get(n, [])}) >= 2
                 and all(e[2] - e[1] < limit * d["duration"] for e in ev_by.get(n, []))]
        if cands:
            pick = cands[0]
            break
    sname = args.plot_score if args.plot_score in run["scores"] else next(iter(run["scores"]))
    scores = run["scores"][sname]["test"][pick]
    att = run["att"][pick] if run["att"] is not None else None
    fig = plot_localization(
        d["X"][te[pick]], scores, classes, events=ev_by.get(names[pick], []), attention=att,
        hop_s=d["hop_s"], offset_s=d["offset_s"], clip_scores=run["clip"][pick],
        title=f"{names[pick]} (fold {fold}, {variant}, trained on the other folds' tags)",
        score_label=SCORE_NAMES.get(sname, sname),
    )
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=110)
    caption = (f"Clip `{names[pick]}` of fold {fold}, scored by `{variant}` trained on the other folds: "
               f"(i) log-mel spectrogram, (ii) {SCORE_NAMES.get(sname, sname)} per tag with the true events "
               f"from strong.tsv (shaded, bars), (iii) z_att(t).")
    rel = os.path.relpath(args.plot, Path(args.out_md).parent) if args.out_md else args.plot
    log(f"wrote {args.plot}")
    return {"path": args.plot, "rel": rel, "caption": caption}


# ----------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Variants: " + ", ".join(ALL_VARIANTS))
    p.add_argument("path", nargs="?", help="domestic-mix folder (audio/, weak.csv, strong.tsv); not needed when --features-cache exists")
    p.add_argument("--variants", default="gmm,mean,att,att_loc", help="comma list among " + ",".join(ALL_VARIANTS))
    p.add_argument("--folds", default="all", help="folds to score, e.g. 1,2 (default: all)")
    p.add_argument("--epochs", type=int, default=20, help="epochs of the paper systems (paper: 20)")
    p.add_argument("--improved-epochs", type=int, default=None, help="epochs of the improved systems (default: --epochs)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--n-filters", type=int, default=None)
    p.add_argument("--rnn-hidden", type=int, default=None)
    p.add_argument("--rnn-layers", type=int, default=None)
    p.add_argument("--dense-units", type=int, default=None)
    p.add_argument("--accelerator", default="auto")
    p.add_argument("--precision", default="32-true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-jobs", type=int, default=None, help="joblib jobs for log-mel extraction and the GMMs")
    p.add_argument("--workers", type=int, default=None,
                   help="processes that compute metrics and the GMM while the networks train "
                        "(default: 0 on <= 2 cores, else min(8, cores - 2))")
    p.add_argument("--features-cache", default=None, help="float16 .npz of log-mel + labels; written if absent, reused if present")
    p.add_argument("--precompute-only", action="store_true", help="write --features-cache and exit")
    p.add_argument("--max-clips", type=int, default=None, help="use only this many clips (the first of each fold), for smoke tests")
    p.add_argument("--median-filter", type=int, default=7, help="median filter (frames) before events (default 7 = 0.11 s)")
    p.add_argument("--out-md", default=None, help="markdown report, e.g. docs/benchmarks.md")
    p.add_argument("--out-json", default=None)
    p.add_argument("--plot", default=None, help="PNG of one scored clip, e.g. docs/images/domestic_mix_localization.png")
    p.add_argument("--plot-variant", default=None, help="system drawn in --plot (default: improved, else att_loc, else the first neural one)")
    p.add_argument("--plot-score", default="paper", help="frame score drawn: frame, att_frame, paper, loc (default paper)")
    p.add_argument("--curve", action="store_true",
                   help="also record the scored fold's macro EER after every epoch (diagnostic learning curve)")
    p.add_argument("--note", default=None, help="extra text for the 'reduced configuration' line")
    return p.parse_args(argv)


class _Done:
    """A finished 'future' for runs without worker processes."""

    def __init__(self, value):
        self._value = value

    def result(self):
        return self._value

    def done(self):
        return True


def main(argv=None):
    args = parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    t_all = time.perf_counter()
    d = load_data(args)
    if args.precompute_only:
        return None
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in ALL_VARIANTS]
    if bad:
        sys.exit(f"error: unknown variants {bad}; choose among {ALL_VARIANTS}")
    all_folds = sorted(int(f) for f in np.unique(d["folds"]))
    folds = all_folds if args.folds == "all" else [int(f) for f in args.folds.split(",")]
    if not set(folds) <= set(all_folds):
        sys.exit(f"error: --folds {folds} not among the data's folds {all_folds}")
    import torch

    from skattloc.events import events_to_frames
    from skattloc.metrics import equal_error_rate

    if torch.cuda.is_available() and args.accelerator in ("gpu", "cuda", "auto"):
        torch.set_float32_matmul_precision("high")  # TF32 matmuls on the GPU
    info = machine_info(args.accelerator)
    log(f"machine: {info}")
    n_frames = d["X"].shape[1]
    truth = events_to_frames(d["strong"], d["filenames"], d["classes"], n_frames, hop_s=d["hop_s"], offset_s=d["offset_s"]).astype(np.uint8)
    meta = {k: d[k] for k in ("classes", "strong", "hop_s", "offset_s", "duration")}
    workers = args.workers if args.workers is not None else (0 if (os.cpu_count() or 1) <= 2 else min(8, os.cpu_count() - 2))
    log(f"{len(d['X'])} clips, classes {d['classes']}, folds {folds}, variants {variants}, metric workers {workers}")
    pool = None
    if workers > 0:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(fn, *a):
        return pool.submit(fn, *a) if pool is not None else _Done(fn(*a))

    command = "python " + " ".join(shlex.quote(a) for a in (sys.argv if argv is None else ["examples/benchmark_domestic_mix.py", *argv]))
    res = {"command": command, "started": started, "machine": info, "variants": variants, "folds": folds,
           "classes": d["classes"], "per_fold": {v: {} for v in variants}, "score_names": {}}
    plot_variant = args.plot_variant or next((v for v in ("improved", "att_loc") if v in variants), next((v for v in variants if v != "gmm"), None))
    pending = {}  # (variant, fold) -> (future, extra fields)
    splits = {}
    for fold in folds:
        tr, te = np.flatnonzero(d["folds"] != fold), np.flatnonzero(d["folds"] == fold)
        splits[fold] = (tr, te)
        if "gmm" in variants:  # CPU work: runs in a worker while the neural systems train
            te_names = [d["filenames"][i] for i in te]
            pending[("gmm", fold)] = (submit(gmm_job, d["X"][tr], d["Y"][tr], d["X"][te], d["Y"][te], truth[tr], truth[te],
                                             meta, te_names, args.median_filter, args.seed, args.n_jobs), {})

    def collect(block):
        for key in list(pending):
            fut, extra = pending[key]
            if not (block or fut.done()):
                continue
            v, fold = key
            out = fut.result()
            out.update(extra)
            del pending[key]
            res["per_fold"][v][fold] = out
            res["score_names"][v] = list(out["loc"])
            loc = out["loc"]
            log(f"  scored {v} fold {fold}: macro EER {np.nanmean(out['eer']):.3f} | " + "; ".join(
                f"{s}: AP {np.nanmean(loc[s]['frame_ap']):.3f} wcAUC {np.nanmean(loc[s]['within_clip_auc']):.3f} "
                f"segF1 {loc[s]['segment_f1']:.3f} evF1 {loc[s]['event_f1']:.3f}" for s in loc))
            if v == "gmm":
                log(f"  gmm fold {fold}: fit {out['fit_s']:.1f} s, scoring {out['predict_s']:.1f} s")

    def report(final):
        done = [f for f in folds if all(f in res["per_fold"][v] for v in variants)]
        if not done:
            return
        wall = time.perf_counter() - t_all
        reduced = []
        if args.max_clips:
            reduced.append(f"{len(d['X'])} clips (--max-clips {args.max_clips})")
        if done != all_folds:
            reduced.append(f"folds {done} of {all_folds} scored" + ("" if final else " (run still in progress)"))
        if args.epochs < 20 and any(v != "gmm" for v in variants):
            reduced.append(f"{args.epochs} epochs instead of the paper's 20")
        if any(getattr(args, k) is not None for k in ("n_filters", "rnn_hidden", "rnn_layers", "dense_units")):
            reduced.append("a smaller network than the paper's")
        if args.note:
            reduced.append(args.note)
        view = dict(res, folds=done)
        summary = {}
        for v in variants:
            macro = [float(np.nanmean(res["per_fold"][v][f]["eer"])) for f in done]
            summary[v] = {"macro_eer_mean": float(np.mean(macro)), "macro_eer_per_fold": macro}
            for s in res["score_names"][v]:
                summary[v][s] = {k: float(np.mean([np.nanmean(res["per_fold"][v][f]["loc"][s][k]) for f in done]))
                                 for k in ("frame_ap", "frame_auc", "within_clip_auc", "segment_f1", "segment_er", "event_f1")}
        view["summary"] = summary
        view["wall_s"] = wall
        if final:
            for v in variants:
                log(f"{v}: macro EER {summary[v]['macro_eer_mean']:.3f} (per fold {', '.join(f'{x:.3f}' for x in summary[v]['macro_eer_per_fold'])})")
        if args.out_md:
            write_markdown(args.out_md, view, args, d, info, wall, "; ".join(reduced))
        if args.out_json:
            Path(args.out_json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out_json).write_text(json.dumps(to_jsonable(view), indent=1))
        if final:
            log(f"wrote {', '.join(p for p in (args.out_md, args.out_json) if p)}")
        return view

    for fold in folds:
        tr, te = splits[fold]
        te_names = [d["filenames"][i] for i in te]
        log(f"fold {fold}: train {len(tr)} clips (folds {sorted(set(d['folds'][tr].tolist()))}), score {len(te)} clips")
        for v in variants:
            if v == "gmm":
                continue
            run = run_neural(v, args, d["X"][tr], d["Y"][tr], d["X"][te], d["Y"][te])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                eer = equal_error_rate(d["Y"][te], run["clip"], average=None)
            collapse = collapse_stats(run["loc"], run["att"], truth[te])
            log(f"  {v} fold {fold}: macro EER {np.nanmean(eer):.3f}; per tag {np.round(eer, 3).tolist()}"
                + (f"; collapse {to_jsonable(collapse)}" if collapse else ""))
            extra = dict(collapse=collapse, history=run["history"], fit_s=run["fit_s"], predict_s=run["predict_s"],
                         n_epochs=run["n_epochs"], curve=run["curve"])
            if run["curve"]:
                log(f"  {v} fold {fold}: scored-fold macro EER per epoch (diagnostic): {np.round(run['curve'], 3).tolist()}")
            pending[(v, fold)] = (submit(evaluate_job, run["scores"], run["clip"], d["Y"][te], truth[tr], truth[te], meta, te_names, args.median_filter), extra)
            if args.plot and v == plot_variant and fold == folds[0]:
                res["plot"] = make_plot(args, d, fold, te, run, v)
            del run
            collect(block=False)
        report(final=False)
    collect(block=True)
    if pool is not None:
        pool.shutdown()
    view = report(final=True)
    log(f"total wall time {time.perf_counter() - t_all:.1f} s")
    return view


if __name__ == "__main__":
    main()
