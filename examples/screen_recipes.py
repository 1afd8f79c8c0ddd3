"""Screen training recipes on an inner validation split of domestic-mix, never on a scored fold.

The 4-fold benchmark (``examples/benchmark_domestic_mix.py``) scores each fold with a model
trained on the other three. Choosing a recipe (front end, pooling, epochs, averaging,
augmentation) by those scores would make them optimistic. This script makes the choices on
validation data instead: it trains on ``--train-folds`` and scores ``--val-fold``, all of
them training folds of the outer fold ``--outer-fold``, which it never reads.

For each recipe and seed it writes one JSON line (``--out``) with the per-epoch history
(``train_loss``, ``val_loss``, ``val_eer``, ``val_map``, computed on the validation fold by
``AttLocTagger.fit(X_val=..., y_val=...)``), the fit time, and, for the final model on the
validation fold: per-tag EER, frame AP, within-clip AUC for every frame output, and the
z_loc statistics. ``--report`` turns those lines into a markdown table.

Typical use (features from ``benchmark_domestic_mix.py --precompute-only``)::

    OMP_NUM_THREADS=1 python examples/screen_recipes.py --features-cache out/domestic_mix_logmel.npz \\
        --recipes crnn_mean,crnn_att --epochs 40 --out out/screen.jsonl
    python examples/screen_recipes.py --report out/screen.jsonl --out-md docs/screening.md

The augmentations of issue 19 (``power_mix``, ``time_shift``, ``filter_augment``) are screened
against the default recipe with ``--recipes default,default+powmix,default+shift,default+filtaug
--seeds 0,1,2``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_domestic_mix as bench  # noqa: E402  (load_data, machine_info, the repo on sys.path)

PAPER_NET = dict(frontend="frame_cnn", n_filters=128, kernel_size=30, rnn_hidden=128, rnn_layers=3, dense_units=500, dropout=0.2)
# A CRNN front end: 3 conv blocks (16, 32, 64 channels), time pooled by 2, 2 biGRU layers of 64.
CRNN = dict(frontend="conv2d", conv_blocks=3, n_filters=64, time_pool=2, rnn_hidden=64, rnn_layers=2, dense_units=128, dropout=0.2)
ATT_LOC_FIXED = dict(pooling="att_loc", loc_background=True, loc_input="rnn", loc_denominator="att_loc")
AUG = dict(spec_augment=2, time_mask_width=10, freq_mask_width=6, mixup_alpha=0.2)

RECIPES = {
    # the paper's network and heads
    "paper_att_loc": dict(PAPER_NET, pooling="att_loc"),
    "paper_mean": dict(PAPER_NET, pooling="mean"),
    "paper_att_loc_fixed": dict(PAPER_NET, **ATT_LOC_FIXED),
    # the CRNN front end with each pooling
    "crnn_mean": dict(CRNN, pooling="mean"),
    "crnn_att": dict(CRNN, pooling="att"),
    "crnn_att_loc": dict(CRNN, pooling="att_loc"),
    "crnn_att_loc_bg": dict(CRNN, pooling="att_loc", loc_background=True),
    "crnn_att_loc_bg_rnn": dict(CRNN, pooling="att_loc", loc_background=True, loc_input="rnn"),
    "crnn_att_loc_fixed": dict(CRNN, **ATT_LOC_FIXED),
    "crnn_linsoft": dict(CRNN, pooling="linear_softmax"),
    "crnn_auto": dict(CRNN, pooling="auto"),
}


def _with(base, **kw):
    out = dict(RECIPES[base])
    out.update(kw)
    return out


def add_training_variants():
    """Training-recipe variants of each CRNN pooling (added lazily: names like crnn_linsoft+ema)."""
    for base in [k for k in RECIPES if k.startswith("crnn_")]:
        RECIPES[base + "+ema"] = _with(base, ema_decay=0.99)
        RECIPES[base + "+aug"] = _with(base, **AUG)
        RECIPES[base + "+aug+ema"] = _with(base, **AUG, ema_decay=0.99)
        RECIPES[base + "+aug+ema+cos"] = _with(base, **AUG, ema_decay=0.99, lr_schedule="cosine")
        RECIPES[base + "+big"] = _with(base, n_filters=128, rnn_hidden=128)
        RECIPES[base + "+tp4"] = _with(base, time_pool=4)
        RECIPES[base + "+aug+ema+tp4"] = _with(base, **AUG, ema_decay=0.99, time_pool=4)


add_training_variants()


def add_augmentation_variants():
    """Issue 19's augmentations on the default recipe (``AttLocTagger()``'s network and
    training: the fixed att_loc CRNN with SpecAugment, mixup and EMA)."""
    base = _with("crnn_att_loc_fixed", **AUG, ema_decay=0.99)
    RECIPES["default"] = base
    RECIPES["default+powmix"] = dict(base, power_mix=0.5)
    RECIPES["default+shift"] = dict(base, time_shift=0.25)
    RECIPES["default+filtaug"] = dict(base, filter_augment=6.0)
    RECIPES["default+powmix+shift+filtaug"] = dict(base, power_mix=0.5, time_shift=0.25, filter_augment=6.0)


add_augmentation_variants()


def frame_outputs(tagger, X):
    fo = tagger.frame_outputs(X)
    out = {"clip": np.stack([r["clip"] for r in fo]), "frame": np.stack([r["frame"] for r in fo])}
    if "att" in fo[0]:
        out["att"] = np.stack([r["att"] for r in fo])
        out["att_frame"] = out["att"][..., None] * out["frame"]
    if "loc" in fo[0]:
        out["loc"] = np.stack([r["loc"] for r in fo])
        out["paper"] = np.stack([r["weighted"] for r in fo])
    return out


def evaluate(outs, Y, truth):
    from skattloc.metrics import equal_error_rate, frame_average_precision, within_clip_auc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = {"eer": equal_error_rate(Y, outs["clip"], average=None).tolist()}
        res["eer_macro"] = float(np.nanmean(res["eer"]))
        for key in ("frame", "att_frame", "paper", "loc"):
            if key in outs:
                res[f"frame_ap[{key}]"] = float(frame_average_precision(truth, outs[key]))
                res[f"within_clip_auc[{key}]"] = float(within_clip_auc(truth, outs[key]))
    res.update({k: (v.tolist() if isinstance(v, np.ndarray) else v)
                for k, v in bench.collapse_stats(outs.get("loc"), outs.get("att"), truth).items()})
    return res


def run(args):
    import torch

    from skattloc import AttLocTagger
    from skattloc.events import events_to_frames

    torch.set_num_threads(args.threads)
    d = bench.load_data(args)
    folds = d["folds"]
    train_folds = [int(f) for f in args.train_folds.split(",")]
    if args.outer_fold in train_folds + [args.val_fold]:
        sys.exit("error: the outer (scored) fold must not be a training or validation fold")
    tr = np.flatnonzero(np.isin(folds, train_folds))
    va = np.flatnonzero(folds == args.val_fold)
    n_frames = d["X"].shape[1]
    names_va = [d["filenames"][i] for i in va]
    keep = set(names_va)
    strong_va = [e for e in d["strong"] if e[0] in keep]
    truth = events_to_frames(strong_va, names_va, d["classes"], n_frames, timing=(d["hop_s"], d["offset_s"]))
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        sys.exit(f"error: unknown recipes {unknown}; known: {sorted(RECIPES)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    info = bench.machine_info("cpu")
    for name in recipes:
        for seed in seeds:
            params = dict(RECIPES[name], max_epochs=args.epochs, random_state=seed, accelerator="cpu")
            tagger = AttLocTagger(**params)
            t0 = time.perf_counter()
            tagger.fit(d["X"][tr], d["Y"][tr], X_val=d["X"][va], y_val=d["Y"][va])
            fit_s = time.perf_counter() - t0
            outs = frame_outputs(tagger, d["X"][va])
            res = evaluate(outs, d["Y"][va], truth)
            if args.save_outputs:  # validation-fold outputs, for post-processing studies
                Path(args.save_outputs).mkdir(parents=True, exist_ok=True)
                np.savez_compressed(Path(args.save_outputs) / f"{name}_s{seed}_e{args.epochs}.npz",
                                    filenames=np.array(names_va), Y=d["Y"][va], **{k: v.astype(np.float16) for k, v in outs.items()})
            row = dict(
                recipe=name, seed=seed, params={k: v for k, v in params.items() if k != "accelerator"},
                train_folds=train_folds, val_fold=args.val_fold, outer_fold=args.outer_fold,
                epochs=args.epochs, fit_s=round(fit_s, 1), threads=args.threads, machine=info["cpu"],
                history=[{k: (round(v, 5) if isinstance(v, float) else v) for k, v in h.items()} for h in tagger.history_],
                final=res,
            )
            best = min(tagger.history_, key=lambda h: h.get("val_eer", np.inf))
            bench.log(f"{name} seed {seed}: fit {fit_s:.0f} s; final val EER {res['eer_macro']:.4f}, "
                      f"best epoch {best['epoch'] + 1} val_eer {best.get('val_eer', float('nan')):.4f}; "
                      + ", ".join(f"{k} {v:.3f}" for k, v in res.items() if k.startswith("within")))
            with open(args.out, "a") as fh:
                fh.write(json.dumps(row) + "\n")


def study_events(args):
    """Choose the weak-calibration constants of EventPostprocessor.calibrate on saved
    validation outputs (``--save-outputs``): each file's validation fold is split in halves;
    calibrate on one half from its clip tags, score event F1 on the other with the strong
    labels, both ways; the mean over files and halves for each grid point is printed."""
    import csv
    import itertools

    from skattloc.metrics import event_based_metrics
    from skattloc.postprocessing import EventPostprocessor

    d = bench.load_data(args)
    classes = d["classes"]
    runs = []
    for spec in args.study_events.split(","):
        path, key = spec.rsplit(":", 1)
        z = np.load(path)
        names = z["filenames"].tolist()
        perm = np.random.default_rng(0).permutation(len(names))
        halves = [np.sort(perm[: len(names) // 2]), np.sort(perm[len(names) // 2:])]
        runs.append((names, z["Y"], z["clip"].astype(float), z[key].astype(float), halves))
    grid = json.loads(args.grid)
    rows = []
    for combo in itertools.product(*grid.values()):
        kw = dict(zip(grid, combo))
        scores = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for names, Y, clip, S, (h0, h1) in runs:
                for A, B in ((h0, h1), (h1, h0)):
                    pp = EventPostprocessor.calibrate(S[A], clip[A], Y[A], classes, timing=(d["hop_s"], d["offset_s"]), **kw)
                    nB = [names[i] for i in B]
                    keep = set(nB)
                    est = pp.decode(S[B], clip[B], nB, timing=(d["hop_s"], d["offset_s"]), clip_duration=d["duration"])
                    ref = [e for e in d["strong"] if e[0] in keep]
                    scores.append(event_based_metrics(ref, est, classes, filenames=nB)["f_measure"])
        rows.append((float(np.mean(scores)), kw, [round(x, 3) for x in scores]))
        print(f"{rows[-1][0]:.4f} {kw} {rows[-1][2]}", flush=True)
    rows.sort(key=lambda r: -r[0])
    print("best:", rows[0])


def report(args):
    rows = [json.loads(line) for p in args.report.split(",") for line in open(p) if line.strip()]
    by = {}
    for r in rows:
        by.setdefault((r["recipe"], r["epochs"]), []).append(r)
    lines = [
        "| recipe | epochs | seeds | final val EER | best-epoch val EER (epoch) | EER at epochs 10/20/30/40/60 | within-clip AUC (frame / att_frame / paper) | fit s |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def ms(v):
        v = [x for x in v if x is not None and np.isfinite(x)]
        if not v:
            return "–"
        return f"{np.mean(v):.3f}" + (f" ± {np.std(v, ddof=1):.3f}" if len(v) > 1 else "")

    for (name, ep), rs in sorted(by.items(), key=lambda kv: np.mean([r["final"]["eer_macro"] for r in kv[1]])):
        curves = np.array([[h.get("val_eer", np.nan) for h in r["history"]] for r in rs])
        mean_curve = np.nanmean(curves, axis=0)
        best = int(np.nanargmin(mean_curve))
        at = "/".join(f"{mean_curve[e - 1]:.3f}" if e <= len(mean_curve) else "–" for e in (10, 20, 30, 40, 60))
        wc = " / ".join(ms([r["final"].get(f"within_clip_auc[{k}]") for r in rs]) for k in ("frame", "att_frame", "paper"))
        lines.append(
            f"| {name} | {ep} | {len(rs)} | {ms([r['final']['eer_macro'] for r in rs])} | "
            f"{mean_curve[best]:.3f} ({best + 1}) | {at} | {wc} | {np.mean([r['fit_s'] for r in rs]):.0f} |"
        )
    text = "\n".join(lines) + "\n"
    if args.out_md:
        Path(args.out_md).write_text(text)
    print(text)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", nargs="?", help="domestic-mix folder; not needed when --features-cache exists")
    p.add_argument("--features-cache", default="out/domestic_mix_logmel.npz")
    p.add_argument("--recipes", default="crnn_mean")
    p.add_argument("--seeds", default="0")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--outer-fold", type=int, default=4, help="the scored fold this screening must never read")
    p.add_argument("--train-folds", default="1,2")
    p.add_argument("--val-fold", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="out/screen.jsonl")
    p.add_argument("--report", default=None, help="comma list of JSONL files to summarize (no training)")
    p.add_argument("--out-md", default=None)
    p.add_argument("--save-outputs", default=None, help="folder for the validation fold's clip and frame outputs (.npz per run)")
    p.add_argument("--study-events", default=None, metavar="NPZ:KEY,...",
                   help="saved validation outputs and the frame output to use (e.g. out/val/x.npz:frame): "
                   "grid-search the weak event-calibration constants (--grid), train nothing")
    p.add_argument("--grid", default='{"low_ratio": [0.3, 0.5], "gap_fraction": [0.25, 1.0]}',
                   help="JSON dict: calibrate() keyword -> list of values")
    args = p.parse_args(argv)
    # load_data's options
    args.max_clips, args.n_jobs = None, 1
    if args.report:
        return report(args)
    if args.study_events:
        return study_events(args)
    return run(args)


if __name__ == "__main__":
    main()
