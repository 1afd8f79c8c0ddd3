"""Peak memory of training on corpora larger than memory, and of hour-long inference.

Part 1 (corpus): for each clip count N (default 2,000 and 20,000) it writes N synthetic
1 s clips to disk as 16-bit WAV files (``make_weak_events`` in chunks of 500 and
``soundfile``), builds a :class:`~skattloc.store.FeatureStore` from the files, and trains
ONE epoch of a tiny network on it. Every phase runs in its own subprocess, and each
prints the peak resident memory (``VmHWM`` of ``/proc/self/status``, reset through
``/proc/self/clear_refs`` right before the measured call, so imports and data
generation do not count; Linux only) together with the resident memory just before it.
Training modes:

``store``          FeatureStore read with positioned reads, no DataLoader workers
``store-workers``  the same, read in 2 DataLoader worker processes (``num_workers=2``)
``store-mmap``     FeatureStore opened with ``mmap=True``
``audio``          :class:`~skattloc.store.AudioFeatures`: log-mel computed on the fly
                   from the WAV paths in 2 DataLoader workers (nothing cached)
``memory``         the whole feature array loaded in memory (what a list of arrays costs)

For the worker modes the largest worker's peak (``RUSAGE_CHILDREN``) is printed too.

Part 2 (long recordings): writes an M-minute 16 kHz WAV of background noise (default 1
and 60 minutes) and runs ``localize`` on it through :class:`AudioFeatures` with a tiny
tagger trained on 1 s clips: the recording is decoded, featurized and run one batch of
windows at a time; only the frame output (M minutes x 3750 frames x 3 classes) is whole.

1 s clips keep the 20,000-clip run short; the memory of the store's path does not depend
on clip length (it reads one batch of clips at a time), while the in-memory mode grows
with it. Run::

    python examples/benchmark_memory.py                       # both parts, ~15 min on 2 cores
    python examples/benchmark_memory.py --clips 2000 20000 --modes store memory --long-minutes
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

# The paper's network kind (PAPER_CONFIG: per-frame CNN, no validation split, augmentation
# or averaging) at a tiny size, as when docs/scaling.md was measured.
TINY = dict(frontend="frame_cnn", time_pool=1, validation_fraction=0.0, spec_augment=0, mixup_alpha=0.0, ema_decay=0.0,
            n_filters=16, kernel_size=30, rnn_hidden=16, rnn_layers=1, dense_units=16, batch_size=100, max_epochs=1,
            random_state=0)
MODES = ("store", "store-workers", "store-mmap", "audio", "memory")


# ---------------------------------------------------------------------- measurement
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> int:
    """Reset this process's peak RSS (VmHWM) to its current RSS; return the RSS in kB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kb("VmRSS")


def peak_kb() -> int:
    return _status_kb("VmHWM")


def measure(fn):
    """Run ``fn()``; return (result, {"rss_before_mb", "peak_mb", "seconds"})."""
    before = reset_peak()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    return out, {"rss_before_mb": before / 1024, "peak_mb": peak_kb() / 1024, "seconds": seconds}


# ---------------------------------------------------------------------- child phases
def child_write(root: str, n: int, chunk: int = 500) -> dict:
    import numpy as np
    import soundfile as sf

    from skattloc import LogMelExtractor, make_weak_events
    from skattloc.store import FeatureStore

    wav_dir = os.path.join(root, "wav")
    os.makedirs(wav_dir, exist_ok=True)
    paths, Y = [], []
    t0 = time.perf_counter()
    for k, first in enumerate(range(0, n, chunk)):
        audio, y, _ = make_weak_events(n_clips=min(chunk, n - first), n_classes=3, duration=1.0, random_state=k)
        for i, a in enumerate(audio):
            paths.append(os.path.join(wav_dir, f"{first + i:06d}.wav"))
            sf.write(paths[-1], a, 16000, subtype="PCM_16")
        Y.append(y)
    np.save(os.path.join(root, "Y.npy"), np.concatenate(Y).astype(np.int8))
    with open(os.path.join(root, "paths.json"), "w") as f:
        json.dump(paths, f)
    write_s = time.perf_counter() - t0
    store, m = measure(lambda: FeatureStore.from_audio(os.path.join(root, "store"), paths, LogMelExtractor(n_jobs=2), overwrite=True))
    size = os.path.getsize(os.path.join(root, "store", "frames.npy"))
    return {"phase": "write", "n": n, "wav_seconds": write_s, "store_mb": size / 2**20, "frames": int(store.offsets[-1]), **m}


def child_train(root: str, n: int, mode: str) -> dict:
    import numpy as np

    from skattloc import AttLocTagger
    from skattloc.store import AudioFeatures, FeatureStore

    Y = np.load(os.path.join(root, "Y.npy"))
    workers = 2 if mode in ("store-workers", "audio") else 0
    if mode == "audio":
        with open(os.path.join(root, "paths.json")) as f:
            X = AudioFeatures(json.load(f))
    else:
        X = FeatureStore(os.path.join(root, "store"), mmap=(mode == "store-mmap"))
        if mode == "memory":
            X = np.array(X.frames).reshape(len(X), -1, X.n_features)  # every clip in memory
    est = AttLocTagger(**TINY, num_workers=workers)
    _, m = measure(lambda: est.fit(X, Y))
    del est
    import gc

    gc.collect()
    workers_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if workers else 0
    return {"phase": "train", "mode": mode, "n": n, "workers_peak_mb": workers_kb / 1024, **m}


def child_long(root: str, minutes: float) -> dict:
    import numpy as np
    import soundfile as sf

    from skattloc import AttLocTagger, LogMelExtractor, make_weak_events
    from skattloc.store import AudioFeatures

    path = os.path.join(root, f"long_{minutes:g}min.wav")
    sr = 16000
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=sr, channels=1, subtype="PCM_16") as f:
        for _ in range(int(round(minutes * 60))):
            f.write((0.01 * rng.standard_normal(sr)).astype(np.float32))  # 1 s at a time
    audio, Y, _ = make_weak_events(n_clips=64, n_classes=3, duration=1.0, random_state=0)
    est = AttLocTagger(**{**TINY, "batch_size": 64}).fit(LogMelExtractor().fit_transform(audio), Y)
    X = AudioFeatures([path])
    loc, m = measure(lambda: est.localize(X)[0])
    return {
        "phase": "long", "minutes": minutes, "frames": int(loc.shape[0]), "window": int(est.n_frames_train_),
        "output_mb": loc.nbytes / 2**20, "wav_mb": os.path.getsize(path) / 2**20, **m,
    }


# ---------------------------------------------------------------------- driver
def run_child(args: list, env_extra=None) -> dict:
    env = dict(os.environ, **(env_extra or {}))
    proc = subprocess.run([sys.executable, __file__, "--child", *map(str, args)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description="Peak RSS of out-of-core training and of long-recording inference.")
    p.add_argument("--clips", type=int, nargs="*", default=[2000, 20000], help="clip counts (default 2000 20000)")
    p.add_argument("--modes", nargs="*", default=list(MODES), choices=MODES, help="training modes (default: all)")
    p.add_argument("--long-minutes", type=float, nargs="*", default=[1, 60], help="long recordings in minutes (default 1 60)")
    p.add_argument("--root", help="work folder, kept (default: a temporary folder, removed at the end); "
                   "a corpus already written there is reused")
    p.add_argument("--threads", type=int, default=1, help="torch/BLAS threads in the measured processes (default 1; "
                   "memory does not depend on it)")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        kind, root, *rest = args.child
        if kind == "write":
            out = child_write(root, int(rest[0]))
        elif kind == "train":
            out = child_train(root, int(rest[0]), rest[1])
        else:
            out = child_long(root, float(rest[0]))
        print(json.dumps(out))
        return

    import platform

    import torch

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} ({args.threads} thread(s) in the measured processes), Python {platform.python_version()}")
    print(f"tiny network: {TINY}")
    root = args.root or tempfile.mkdtemp(prefix="skattloc-mem-")
    threads = str(args.threads)
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
    try:
        rows = []
        for n in args.clips:
            folder = os.path.join(root, f"n{n}")
            if os.path.exists(os.path.join(folder, "store", "meta.json")) and os.path.exists(os.path.join(folder, "Y.npy")):
                print(f"N={n:>6}: reusing the corpus in {folder}", flush=True)
            else:
                w = run_child(["write", folder, n], env)
                print(f"N={n:>6}: wrote {n} WAVs in {w['wav_seconds']:.0f} s; FeatureStore.from_audio: "
                      f"{w['store_mb']:.0f} MB on disk, peak RSS {w['peak_mb']:.0f} MB "
                      f"(RSS before {w['rss_before_mb']:.0f} MB), {w['seconds']:.0f} s", flush=True)
            for mode in args.modes:
                r = run_child(["train", folder, n, mode], env)
                rows.append(r)
                extra = f", largest worker peak {r['workers_peak_mb']:.0f} MB" if r["workers_peak_mb"] else ""
                print(f"N={n:>6} {mode:>13}: fit 1 epoch peak RSS {r['peak_mb']:.0f} MB "
                      f"(RSS before fit {r['rss_before_mb']:.0f} MB, +{r['peak_mb'] - r['rss_before_mb']:.0f} MB)"
                      f"{extra}, {r['seconds']:.0f} s", flush=True)
            if not args.root:
                shutil.rmtree(folder, ignore_errors=True)
        if len(args.clips) >= 2:
            lo, hi = min(args.clips), max(args.clips)
            print(f"peak RSS growth from N={lo} to N={hi} (fit only, peak minus RSS before fit):")
            for mode in args.modes:
                d = {r["n"]: r["peak_mb"] - r["rss_before_mb"] for r in rows if r["mode"] == mode}
                print(f"  {mode:>13}: {d[lo]:.0f} MB -> {d[hi]:.0f} MB ({d[hi] - d[lo]:+.0f} MB)")
        for minutes in args.long_minutes:
            r = run_child(["long", root, minutes], env)
            print(f"{minutes:g} min recording ({r['frames']} frames, window {r['window']} frames, "
                  f"WAV {r['wav_mb']:.0f} MB): localize peak RSS {r['peak_mb']:.0f} MB "
                  f"(RSS before {r['rss_before_mb']:.0f} MB, +{r['peak_mb'] - r['rss_before_mb']:.0f} MB; "
                  f"frame output {r['output_mb']:.2f} MB), {r['seconds']:.0f} s", flush=True)
    finally:
        if not args.root:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
