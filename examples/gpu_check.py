"""One prepared check for a lent GPU machine: mixed-precision speed and learning, in ~2 minutes.

For each precision (``32-true``, ``bf16-mixed``, ``16-mixed``) it measures, for the paper's
model (3 biGRU x 128, dense 500, att_loc, Adam 1e-3) at batch 100 on 249 x 40 frames:

- training throughput (clips/s) of ``AttLocTagger.fit`` and of a plain PyTorch loop on
  the same network (``torch.autocast`` + ``GradScaler`` for float16), timed over the
  epochs after a warm-up epoch, with the GPU synchronized at the epoch boundaries;
- a short learning check: fit on synthetic clips, macro EER on held-out ones (chance is
  0.5), outputs finite;
- inference throughput of ``predict_proba`` and ``localize`` (float32 network) at batch
  sizes 1, 16, 100 and 1000, with the real-time factor;
- where a fit's host time goes (Lightning's ``SimpleProfiler``: median ms per training
  batch for the step, the backward pass, fetching and moving the batch);
- how far GPU probabilities are from the CPU's, with cuDNN's TF32 on (PyTorch's default)
  and off.

Needs only torch, lightning, scikit-learn and skattloc: the features are synthetic log-mel
frames made here (or ``--npz`` with ``X``, ``Y`` arrays), no audio is read, and if
librosa or soundfile are not installed they are replaced by empty stand-ins (skattloc
imports them at start-up; nothing here calls them). Results go to ``--out`` as JSON,
rewritten after every section, so a run cut short still leaves what it measured.

Examples
--------
::

    python examples/gpu_check.py --out gpu_check.json                       # on the GPU
    python examples/gpu_check.py --quick --accelerator cpu --out /tmp/c.json  # dry run on a CPU
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
import traceback
import types

import numpy as np

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")


def _stub_missing_audio_modules():
    """skattloc.features imports librosa and soundfile at module level; this script never
    calls them. Where they are missing, put empty modules in their place."""
    stubbed = []
    for name in ("librosa", "soundfile"):
        if importlib.util.find_spec(name) is None:
            sys.modules[name] = types.ModuleType(name)
            stubbed.append(name)
    return stubbed


STUBBED = _stub_missing_audio_modules()

import torch  # noqa: E402
from lightning.pytorch.callbacks import Callback  # noqa: E402

from skattloc import PAPER_CONFIG, AttLocTagger  # noqa: E402
from skattloc.metrics import equal_error_rate  # noqa: E402
from skattloc.model import CGRNN, clip_bce  # noqa: E402


def synthetic_features(n_clips, n_frames, n_mels, n_classes, seed):
    """Standard-normal 'log-mel' frames; each class adds a fixed spectral bump (a Gaussian
    over mel bands) over a random span of frames in about 30 % of the clips."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n_clips, n_frames, n_mels).astype(np.float32)
    Y = np.zeros((n_clips, n_classes), dtype=np.float32)
    centres = np.linspace(3, n_mels - 4, n_classes)
    bands = np.arange(n_mels)
    profiles = 2.5 * np.exp(-0.5 * ((bands[None] - centres[:, None]) / 2.0) ** 2)
    for i in range(n_clips):
        for k in range(n_classes):
            if rng.rand() < 0.3:
                length = rng.randint(max(1, n_frames // 8), max(2, n_frames // 2))
                onset = rng.randint(0, n_frames - length + 1)
                X[i, onset:onset + length] += profiles[k]
                Y[i, k] = 1
    return X, Y


def clip_seconds(n_frames):
    return ((n_frames - 1) * 256 + 512) / 16000  # LogMelExtractor defaults (249 frames: 4 s)


class EpochClock(Callback):
    """Wall time of each training epoch, with the device synchronized at its boundaries."""

    def __init__(self):
        self.times = []

    def _sync(self, trainer):
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize(trainer.strategy.root_device)

    def on_train_epoch_start(self, trainer, pl_module):
        self._sync(trainer)
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self._sync(trainer)
        self.times.append(time.perf_counter() - self._t0)


def plain_loop(net, X, Y, epochs, batch_size, lr, precision, device, seed):
    """A plain training loop with autocast; returns per-epoch wall times (synchronized)."""
    torch.manual_seed(seed)
    net = net.to(device).train()
    amp_dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    if device.type == "cpu" and amp_dtype is torch.float16:
        amp_dtype = torch.bfloat16  # as Lightning does on the CPU
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype is torch.float16)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    Xt, Yt = torch.from_numpy(X).to(device), torch.from_numpy(Y).to(device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    times = []
    for _ in range(epochs):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        perm = torch.randperm(len(Xt), generator=gen).to(device)
        for s in range(0, len(Xt), batch_size):
            idx = perm[s:s + batch_size]
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                out = net(Xt[idx])
            loss = clip_bce(out.clip, Yt[idx])
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="JSON file for the results")
    p.add_argument("--accelerator", default="gpu", help="gpu (default) or cpu for a dry run")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a CPU dry run in about a minute)")
    p.add_argument("--precisions", default=",".join(PRECISIONS))
    p.add_argument("--npz", default=None, help="optional .npz with X (n, frames, mels) and Y (n, classes)")
    p.add_argument("--budget-s", type=float, default=110.0, help="skip what is left after this many seconds")
    p.add_argument("--batch-size", type=int, default=100, help="training batch size (the paper's: 100)")
    p.add_argument("--rounds", type=int, default=2, help="fit and the plain loop run alternately this many times")
    p.add_argument("--sections", default="train,learn,infer,profile,tf32",
                   help="comma-separated: train, learn, infer, profile, tf32")
    p.add_argument("--profile-precision", default="bf16-mixed", help="precision of the profiled fit")
    args = p.parse_args(argv)
    t_start = time.perf_counter()

    gpu = args.accelerator in ("gpu", "cuda")
    if gpu and not torch.cuda.is_available():
        raise SystemExit("--accelerator gpu but torch.cuda.is_available() is False; use --accelerator cpu for a dry run")
    device = torch.device("cuda" if gpu else "cpu")
    if args.quick:
        size = dict(n_frames=40, n_mels=40, speed_clips=200, speed_epochs=2, learn_clips=300, test_clips=100,
                    learn_epochs=5, infer_clips=200)
        net_kw = dict(rnn_hidden=16, rnn_layers=1, dense_units=32)
        lr = 3e-3
    else:
        size = dict(n_frames=249, n_mels=40, speed_clips=3000, speed_epochs=3, learn_clips=1500, test_clips=500,
                    learn_epochs=10, infer_clips=3000)
        net_kw = dict(rnn_hidden=128, rnn_layers=3, dense_units=500)  # the paper's model
        lr = 1e-3
    batch = args.batch_size
    sections = set(args.sections.split(","))
    n_classes = 5
    info = {
        "python": platform.python_version(), "torch": torch.__version__,
        "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if gpu else None,
        "device": torch.cuda.get_device_name(0) if gpu else platform.processor() or platform.machine(),
        "bf16_supported": bool(torch.cuda.is_bf16_supported()) if gpu else None,
        "stubbed_modules": STUBBED, "argv": sys.argv, "sizes": size, "network": net_kw, "batch_size": batch,
        "cpu_threads": torch.get_num_threads(),
    }
    import lightning

    info["lightning"] = lightning.__version__
    results = {"info": info, "train_speed": {}, "learning": {}, "inference": {}, "errors": {}}

    def save():
        results["elapsed_s"] = round(time.perf_counter() - t_start, 1)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1, default=float)

    def record_error(what, exc):
        """Keep going: one section failing must not hide the others."""
        results["errors"][what] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        traceback.print_exc()

    def over_budget(what):
        if time.perf_counter() - t_start > args.budget_s:
            results["errors"][what] = f"skipped: over the {args.budget_s:.0f} s budget"
            print(f"[skip] {what}: over budget", flush=True)
            return True
        return False

    print(json.dumps(info), flush=True)
    save()
    n_mels, n_frames = size["n_mels"], size["n_frames"]
    if args.npz:
        d = np.load(args.npz)
        Xall, Yall = d["X"].astype(np.float32), d["Y"].astype(np.float32)
        n_classes = Yall.shape[1]
        n_mels, n_frames = Xall.shape[2], Xall.shape[1]
    else:
        Xall, Yall = synthetic_features(size["speed_clips"] + size["learn_clips"] + size["test_clips"],
                                        n_frames, n_mels, n_classes, seed=0)
    Xs, Ys = Xall[: size["speed_clips"]], Yall[: size["speed_clips"]]
    Xl = Xall[-(size["learn_clips"] + size["test_clips"]): -size["test_clips"]]
    Yl = Yall[-(size["learn_clips"] + size["test_clips"]): -size["test_clips"]]
    Xt, Yt = Xall[-size["test_clips"]:], Yall[-size["test_clips"]:]
    # the paper's configuration (PAPER_CONFIG), so that fit trains what the plain loop trains
    paper = {k: v for k, v in PAPER_CONFIG.items() if k != "max_epochs"}  # each section sets its epochs
    tagger_kw = {**paper, **net_kw, "batch_size": batch, "learning_rate": lr, "accelerator": args.accelerator,
                 "devices": 1, "random_state": 0}
    precisions = [q for q in args.precisions.split(",") if q]

    # 1. training throughput: fit vs a plain loop, per precision
    for prec in precisions if "train" in sections else ():
        if over_budget(f"train_speed {prec}"):
            break
        try:
            if gpu:
                torch.cuda.reset_peak_memory_stats()
            n = len(Xs)
            fit_rates, loop_rates, fit_epochs, loop_epochs = [], [], [], []
            for _ in range(args.rounds):  # alternate: clocks and other tenants drift
                clock = EpochClock()
                t0 = time.perf_counter()
                AttLocTagger(**tagger_kw, precision=prec, max_epochs=size["speed_epochs"], callbacks=[clock]).fit(Xs, Ys)
                fit_total = time.perf_counter() - t0
                net = CGRNN(n_mels, Ys.shape[1], **net_kw)
                loop_times = plain_loop(net, Xs, Ys, size["speed_epochs"], batch, lr, prec, device, 0)
                fit_rates.append(n / float(np.median(clock.times[1:])))
                loop_rates.append(n / float(np.median(loop_times[1:])))
                fit_epochs.append(clock.times)
                loop_epochs.append(loop_times)
            row = {
                "fit_clips_per_s": float(np.median(fit_rates)),
                "plain_loop_clips_per_s": float(np.median(loop_rates)),
                "fit_clips_per_s_each_round": fit_rates, "plain_clips_per_s_each_round": loop_rates,
                "fit_epoch_s": fit_epochs, "plain_epoch_s": loop_epochs, "fit_total_s_last": fit_total,
                "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if gpu else None,
            }
            row["fit_over_plain"] = row["fit_clips_per_s"] / row["plain_loop_clips_per_s"]
            results["train_speed"][prec] = row
            print(f"train {prec:>10}: fit {row['fit_clips_per_s']:8.1f} clips/s, plain loop "
                  f"{row['plain_loop_clips_per_s']:8.1f} clips/s, ratio {row['fit_over_plain']:.3f}", flush=True)
        except Exception as exc:  # record and go on: one precision failing must not hide the others
            record_error(f"train_speed {prec}", exc)
        save()
    base = results["train_speed"].get("32-true", {}).get("fit_clips_per_s")
    for prec, row in results["train_speed"].items():
        if base:
            row["speedup_vs_32_true"] = row["fit_clips_per_s"] / base

    # 2. learning check, per precision
    for prec in precisions if "learn" in sections else ():
        if over_budget(f"learning {prec}"):
            break
        try:
            t0 = time.perf_counter()
            tagger = AttLocTagger(**tagger_kw, precision=prec, max_epochs=size["learn_epochs"]).fit(Xl, Yl)
            fit_s = time.perf_counter() - t0
            proba = tagger.predict_proba(Xt)
            frames = tagger.localize(Xt)
            row = {
                "eer_macro": float(equal_error_rate(Yt, proba)),
                "finite_outputs": bool(np.isfinite(proba).all() and np.isfinite(frames).all()),
                "train_loss_first_last": [tagger.history_[0]["train_loss"], tagger.history_[-1]["train_loss"]],
                "fit_s": fit_s, "epochs": tagger.n_epochs_,
            }
            results["learning"][prec] = row
            print(f"learn {prec:>10}: EER {row['eer_macro']:.3f} (chance 0.5), finite {row['finite_outputs']}, "
                  f"loss {row['train_loss_first_last'][0]:.3f} -> {row['train_loss_first_last'][1]:.3f}", flush=True)
        except Exception as exc:
            record_error(f"learning {prec}", exc)
        save()

    # 3. inference throughput (the fitted network runs in float32)
    if "infer" in sections and not over_budget("inference"):
        try:
            tagger = AttLocTagger(**tagger_kw, max_epochs=1).fit(Xs[:batch], Ys[:batch])
            secs = clip_seconds(n_frames)
            for bs in (1, 16, 100, 1000):
                n = min(size["infer_clips"], {1: 100, 16: 800}.get(bs, size["infer_clips"]))
                Xi = Xall[:n]
                tagger.set_params(batch_size=bs)
                tagger.predict_proba(Xi[: min(n, 2 * bs)])  # warm-up at this batch size
                row = {}
                for name, fn in (("predict_proba", tagger.predict_proba), ("localize", tagger.localize)):
                    t0 = time.perf_counter()
                    fn(Xi)
                    dt = time.perf_counter() - t0
                    row[name] = {"clips_per_s": n / dt, "real_time_factor": n / dt * secs, "n_clips": n}
                    print(f"infer batch {bs:>4} {name:>13}: {n / dt:9.1f} clips/s, {n / dt * secs:9.1f}x real time",
                          flush=True)
                results["inference"][str(bs)] = row
                save()
        except Exception as exc:
            record_error("inference", exc)
    # 4. where a fit's host time goes: Lightning's SimpleProfiler, per training batch
    if "profile" in sections and not over_budget("profile"):
        try:
            import tempfile

            from lightning.pytorch.profilers import SimpleProfiler

            with tempfile.TemporaryDirectory() as tmp:
                prof = SimpleProfiler(dirpath=tmp, filename="fit")
                AttLocTagger(**tagger_kw, precision=args.profile_precision, max_epochs=2,
                             trainer_kwargs={"profiler": prof}).fit(Xs, Ys)
                keys = {"run_training_batch": "training batch (all)",
                        "[Strategy]SingleDeviceStrategy.training_step": "forward + loss",
                        "[Strategy]SingleDeviceStrategy.backward": "backward",
                        "[_TrainingEpochLoop].train_dataloader_next": "next batch from the DataLoader",
                        "[Strategy]SingleDeviceStrategy.batch_to_device": "batch to the device"}
                row = {"precision": args.profile_precision}
                for key, label in keys.items():
                    durations = prof.recorded_durations.get(key, [])
                    if durations:  # the median: the first steps carry one-off warm-up costs
                        row[label] = {"median_ms": 1e3 * float(np.median(durations)),
                                      "mean_ms": 1e3 * float(np.mean(durations)), "calls": len(durations)}
                        print(f"profile {args.profile_precision}: {label:>32}: {row[label]['median_ms']:7.3f} ms "
                              f"median over {len(durations)} calls (mean {row[label]['mean_ms']:.3f})", flush=True)
            results["profile"] = row
        except Exception as exc:
            record_error("profile", exc)
        save()

    # 5. GPU against CPU predictions of one CPU-fitted network, TF32 on (PyTorch's default
    # for cuDNN) and off
    if gpu and "tf32" in sections and not over_budget("tf32"):
        try:
            small = AttLocTagger(rnn_hidden=32, rnn_layers=2, dense_units=64, max_epochs=3, accelerator="cpu",
                                 random_state=0).fit(Xl[:500], Yl[:500])
            cpu = small.predict_proba(Xt)
            small.set_params(accelerator="gpu")
            flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
            try:
                on = small.predict_proba(Xt)
                torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
                off = small.predict_proba(Xt)
            finally:
                torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags
            results["tf32"] = {"cudnn_allow_tf32_default": flags[0],
                               "max_abs_diff_vs_cpu_default": float(np.abs(on - cpu).max()),
                               "max_abs_diff_vs_cpu_tf32_off": float(np.abs(off - cpu).max())}
            print(f"tf32: GPU vs CPU probabilities, max abs difference {results['tf32']['max_abs_diff_vs_cpu_default']:.2e} "
                  f"(default), {results['tf32']['max_abs_diff_vs_cpu_tf32_off']:.2e} (TF32 off)", flush=True)
        except Exception as exc:
            record_error("tf32", exc)
    save()
    print(f"done in {results['elapsed_s']} s; wrote {args.out}; errors: {list(results['errors']) or 'none'}")
    return results


if __name__ == "__main__":
    main()
