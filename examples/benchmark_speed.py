"""Training and inference speed of ``AttLocTagger`` against plain PyTorch.

What it measures, in one process, with the same data, batch size, optimizer and threads:

1. ``train``: clips/s of ``AttLocTagger.fit`` against a hand-written PyTorch loop, for
   three systems, run alternately (the order rotates every round):

   - ``plain``: the loop on :class:`PlainCGRNN`, the paper's model built the plain way
     (a per-frame ``nn.Conv1d`` over frequency, ``nn.GRU``, ...);
   - ``loop+CGRNN``: the same loop on :class:`skattloc.model.CGRNN` (the optimized
     network), so ``fit / loop+CGRNN`` is the cost of the estimator and Lightning alone;
   - ``fit``: ``AttLocTagger(...).fit(X, Y)``, end to end (validation, feature
     statistics, Trainer set-up included).

   Both an end-to-end rate (clips trained / wall time of the whole call) and a
   steady-state rate (batch size / median time between consecutive optimizer steps) are
   printed, with per-round paired ratios and their medians. Targets: ``fit`` at least
   0.95 of ``plain`` (no framework tax), and 1.5x ``plain`` past parity.
2. ``infer``: clips/s and real-time factor of ``predict_proba`` and ``localize`` at batch
   sizes 1, 16 and 100, next to the plain build's forward pass.
3. ``parts``: before/after timings of each optimization, alternated and repeated: the
   per-frame convolution (``nn.Conv1d`` vs one matmul), the GRU (``nn.GRU`` vs
   :func:`skattloc._fastpath.bigru`), a whole training step (plain vs optimized), the
   training data path (a tensor gather vs the ``DataLoader`` clip by clip, as before, and
   with one gather per batch, as now), and, with ``--compile``, ``torch.compile`` (compile
   time and step time). ``--sections data`` runs only the data-path part.

The machine is shared: run with ``timeout``, compare paired/median numbers, and repeat.
Defaults are the paper's model (3 biGRU x 128, dense 500, dropout 0.2, att_loc, Adam 1e-3,
batch 100) on 249 x 40 log-mel frames (4 s clips).

Examples
--------
::

    python examples/benchmark_speed.py --quick                  # 85 s on 2 quiet cores
    timeout 1800 python examples/benchmark_speed.py --rounds 5 --json speed.json
    python examples/benchmark_speed.py --sections parts --compile
    python examples/benchmark_speed.py --sections data --n-clips 1000 --part-repeats 7
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def _stub_missing_audio_modules():
    """skattloc imports librosa and soundfile at start-up; only ``--data weak`` uses them.
    Where they are not installed (e.g. a bare GPU machine), put empty modules in their place."""
    import importlib.util
    import types

    for name in ("librosa", "soundfile"):
        if importlib.util.find_spec(name) is None:
            sys.modules[name] = types.ModuleType(name)


_stub_missing_audio_modules()

HOP_S, N_FFT, SR = 256, 512, 16000  # LogMelExtractor defaults: frame t spans samples [256 t, 256 t + 512)


def clip_seconds(n_frames: int) -> float:
    """Duration in seconds of a clip of ``n_frames`` log-mel frames (249 frames: 4.0 s)."""
    return ((n_frames - 1) * HOP_S + N_FFT) / SR


# ------------------------------------------------------------------------------------------
# The plain build
# ------------------------------------------------------------------------------------------
class PlainCGRNN(nn.Module):
    """The paper's network written the plain way: the reference for speed and for outputs.

    Same parameters and buffers, with the same names, as :class:`skattloc.model.CGRNN`
    (``load_state_dict`` works both ways), computed the obvious way: every frame goes
    through an ``nn.Conv1d`` over frequency, ReLU, max over positions; then the attention
    (eq. 3-4), the localization softmax (eq. 6), ``nn.GRU`` (packed when clips have
    different lengths), the dense layer, the frame sigmoid and the pooling (eq. 2, 5, 8).

    Returns a dict with ``clip`` (B, C), ``frame`` (B, T, C), ``att`` (B, T) or None and
    ``loc`` (B, T, C) or None.
    """

    def __init__(self, n_mels, n_classes, n_filters=128, kernel_size=30, rnn_hidden=128,
                 rnn_layers=3, dense_units=500, dropout=0.2, pooling="att_loc"):
        super().__init__()
        self.pooling = pooling
        self.register_buffer("input_mean", torch.zeros(n_mels))
        self.register_buffer("input_scale", torch.ones(n_mels))
        self.conv = nn.Conv1d(1, n_filters, kernel_size)
        self.att = nn.Linear(n_mels, 1) if pooling in ("att", "att_loc") else None
        self.loc = nn.Linear(n_filters, n_classes) if pooling == "att_loc" else None
        self.gru = nn.GRU(n_filters, rnn_hidden, num_layers=rnn_layers, batch_first=True, bidirectional=True)
        self.dense = nn.Linear(2 * rnn_hidden, dense_units)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(dense_units, n_classes)

    def forward(self, x, lengths=None):
        B, T, M = x.shape
        x = (x - self.input_mean) / self.input_scale
        c = self.conv(x.reshape(B * T, 1, M))  # (B*T, F, P): the conv of every frame
        c = torch.relu(c).max(dim=2).values.reshape(B, T, -1)  # (B, T, F)
        att = loc = None
        if self.att is not None:
            att = torch.sigmoid(self.att(x)).squeeze(-1)  # eq. (3)
            c = att.unsqueeze(-1) * c  # eq. (4)
        if self.loc is not None:
            loc = torch.softmax(self.loc(c), dim=-1)  # eq. (6)
        if lengths is None:
            h, _ = self.gru(c)
            m = torch.ones(B, T, 1)
        else:
            packed = pack_padded_sequence(c, lengths.cpu(), batch_first=True, enforce_sorted=False)
            h, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=T)
            m = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).float().unsqueeze(-1)
        h = self.dropout(torch.relu(self.dense(h)))
        frame = torch.sigmoid(self.out(h))  # O(t)
        if self.pooling == "mean":
            clip = (frame * m).sum(1) / m.sum(1)  # eq. (2)
        elif self.pooling == "att":
            w = att.unsqueeze(-1) * m
            clip = (w * frame).sum(1) / w.sum(1)  # eq. (5), the z_att-weighted mean
        else:
            w = loc * m
            clip = (att.unsqueeze(-1) * frame * w).sum(1) / w.sum(1)  # eq. (7)-(8)
        return {"clip": clip, "frame": frame, "att": att, "loc": loc}


def plain_bce(clip, y, eps=1e-7):
    return F.binary_cross_entropy(clip.clamp(eps, 1 - eps), y)


def plain_fit(model: nn.Module, X: np.ndarray, Y: np.ndarray, epochs: int, batch_size: int,
              lr: float, seed: int, step_times: Optional[List[float]] = None) -> nn.Module:
    """A plain PyTorch training loop: standardize, shuffle, Adam, clip BCE.

    ``step_times`` receives ``time.perf_counter()`` after every optimizer step.
    """
    torch.manual_seed(seed)
    flat = X.reshape(-1, X.shape[-1]).astype(np.float64)
    model.input_mean.copy_(torch.from_numpy(flat.mean(0)))
    model.input_scale.copy_(torch.from_numpy(np.maximum(flat.std(0), 1e-5)))
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y.astype(np.float32))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(Xt), generator=gen)
        for start in range(0, len(Xt), batch_size):
            idx = perm[start:start + batch_size]
            out = model(Xt[idx])
            clip = out["clip"] if isinstance(out, dict) else out.clip
            loss = plain_bce(clip, Yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step_times is not None:
                step_times.append(time.perf_counter())
    return model


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------
def make_data(n_clips, n_frames, n_mels, n_classes, seed, kind="random"):
    """Features and tags. ``random``: standard normal features, random tags (speed only).
    ``weak``: make_weak_events clips through LogMelExtractor (needs librosa)."""
    if kind == "weak":
        from skattloc import LogMelExtractor, make_weak_events

        dur = clip_seconds(n_frames)
        audio, Y, _ = make_weak_events(n_clips=n_clips, n_classes=n_classes, duration=dur, random_state=seed)
        X = LogMelExtractor(n_mels=n_mels).fit_transform(audio)[:, :n_frames]
        return np.ascontiguousarray(X, dtype=np.float32), Y.astype(np.float32)
    rng = np.random.RandomState(seed)
    X = rng.randn(n_clips, n_frames, n_mels).astype(np.float32)
    Y = (rng.rand(n_clips, n_classes) < 0.3).astype(np.float32)
    return X, Y


def net_kwargs(args):
    return dict(n_filters=args.n_filters, kernel_size=args.kernel_size, rnn_hidden=args.rnn_hidden,
                rnn_layers=args.rnn_layers, dense_units=args.dense_units, dropout=args.dropout,
                pooling=args.pooling)


def median(xs):
    return float(statistics.median(xs)) if xs else float("nan")


def steady_rate(stamps: List[float], start: float, batch_size: int) -> float:
    """batch_size / median time between optimizer steps (the first step counts from start)."""
    gaps = np.diff([start] + stamps)
    if len(gaps) > 2:
        gaps = gaps[1:]  # the first step carries one-off set-up costs
    return batch_size / float(np.median(gaps))


def machine_info(threads):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = f"{names[0]} x{len(names)}" if names else cpu
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    import lightning

    return {"cpu": cpu, "torch": torch.__version__, "lightning": lightning.__version__,
            "python": platform.python_version(), "threads": threads,
            "loadavg_start": None if load is None else [round(v, 2) for v in load]}


# ------------------------------------------------------------------------------------------
# 1. Training
# ------------------------------------------------------------------------------------------
def bench_train(args, X, Y) -> Dict:
    from lightning.pytorch.callbacks import Callback

    from skattloc import PAPER_CONFIG, AttLocTagger
    from skattloc.model import CGRNN

    class StepStamps(Callback):
        def __init__(self, stamps):
            self.stamps = stamps

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.stamps.append(time.perf_counter())

    n, n_mels, n_classes = len(X), X.shape[-1], Y.shape[1]
    kw = net_kwargs(args)

    def run(system, X, Y, epochs):
        stamps: List[float] = []
        t0 = time.perf_counter()
        if system == "plain":
            plain_fit(PlainCGRNN(n_mels, n_classes, **kw), X, Y, epochs, args.batch_size, args.lr, args.seed, stamps)
        elif system == "loop+CGRNN":
            plain_fit(CGRNN(n_mels, n_classes, **kw), X, Y, epochs, args.batch_size, args.lr, args.seed, stamps)
        else:
            # the paper's configuration (PAPER_CONFIG: no validation split, augmentation or
            # averaging), so that fit trains what the plain loop trains
            AttLocTagger(**{**PAPER_CONFIG, **kw, "learning_rate": args.lr, "batch_size": args.batch_size,
                            "max_epochs": epochs}, accelerator="cpu", random_state=args.seed,
                         callbacks=[StepStamps(stamps)]).fit(X, Y)
        wall = time.perf_counter() - t0
        return {"wall_s": wall, "clips_per_s": len(X) * epochs / wall,
                "steady_clips_per_s": steady_rate(stamps, t0, args.batch_size), "steps": len(stamps)}

    systems = ["plain", "loop+CGRNN", "fit"]
    # Warm-up: one step of each (lazy initialization, first-call costs, imports).
    for s in systems:
        run(s, X[: args.batch_size], Y[: args.batch_size], 1)
    rounds = []
    for r in range(args.rounds):
        order = systems[r % len(systems):] + systems[: r % len(systems)]
        res = {}
        for s in order:
            res[s] = run(s, X, Y, args.epochs)
            print(f"  round {r + 1}/{args.rounds} {s:>12}: {res[s]['clips_per_s']:6.2f} clips/s end-to-end, "
                  f"{res[s]['steady_clips_per_s']:6.2f} steady ({res[s]['wall_s']:.1f} s)", flush=True)
        rounds.append(res)
    summary = {}
    for s in systems:
        summary[s] = {k: median([rd[s][k] for rd in rounds]) for k in ("clips_per_s", "steady_clips_per_s", "wall_s")}
    ratios = {}
    for a, b in [("fit", "plain"), ("fit", "loop+CGRNN"), ("loop+CGRNN", "plain")]:
        for k in ("clips_per_s", "steady_clips_per_s"):
            ratios[f"{a} / {b} ({k})"] = median([rd[a][k] / rd[b][k] for rd in rounds])
    return {"n_clips": n, "epochs": args.epochs, "rounds": rounds, "median": summary, "paired_ratio_median": ratios}


# ------------------------------------------------------------------------------------------
# 2. Inference
# ------------------------------------------------------------------------------------------
def bench_infer(args, X, Y) -> Dict:
    from skattloc import PAPER_CONFIG, AttLocTagger

    tagger = AttLocTagger(**{**PAPER_CONFIG, **net_kwargs(args), "batch_size": args.batch_size, "max_epochs": 1},
                          accelerator="cpu", random_state=args.seed).fit(X[: args.batch_size], Y[: args.batch_size])
    plain = PlainCGRNN(X.shape[-1], Y.shape[1], **net_kwargs(args))
    plain.load_state_dict(tagger.model_.state_dict())
    plain.eval()
    secs = clip_seconds(X.shape[1])
    out = {}
    for bs in (1, 16, 100):
        n = min(len(X), args.infer_clips.get(bs, 100))
        Xi = X[:n]
        tagger.set_params(batch_size=bs)

        def plain_forward():
            with torch.inference_mode():
                for s in range(0, n, bs):
                    plain(torch.from_numpy(Xi[s:s + bs]))

        fns = {"predict_proba": lambda: tagger.predict_proba(Xi), "localize": lambda: tagger.localize(Xi),
               "plain forward": plain_forward}
        times = {k: [] for k in fns}
        fns["predict_proba"]()  # warm-up at this batch size
        for _ in range(args.infer_repeats):
            for k, f in fns.items():
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
        row = {}
        for k, ts in times.items():
            rate = n / median(ts)
            row[k] = {"clips_per_s": rate, "real_time_factor": rate * secs, "n_clips": n}
            print(f"  batch {bs:>3} {k:>14}: {rate:7.1f} clips/s, {rate * secs:7.1f}x real time ({n} clips)", flush=True)
        out[str(bs)] = row
    return out


# ------------------------------------------------------------------------------------------
# 3. The optimizations, one by one
# ------------------------------------------------------------------------------------------
def _alternate(fns: Dict[str, callable], repeats: int) -> Dict[str, Dict[str, float]]:
    """Run each function ``repeats`` times, alternating, after one warm-up call each.
    Median wall time and median process CPU time per call."""
    for f in fns.values():
        f()
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            f()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return {k: {"wall_s": median(wall[k]), "cpu_s": median(cpu[k]), "min_wall_s": min(wall[k])} for k in fns}


def bench_parts(args, X, Y, only_data: bool = False) -> Dict:
    from skattloc import _fastpath
    from skattloc.data import train_loader
    from skattloc.model import CGRNN, clip_bce

    torch.manual_seed(args.seed)
    B = args.batch_size
    n_mels, n_classes = X.shape[-1], Y.shape[1]
    x = torch.from_numpy(X[:B])
    y = torch.from_numpy(Y[:B])
    res = {}

    def report(name, fns):
        r = _alternate(fns, args.part_repeats)
        names = list(fns)
        base = r[names[0]]
        for k in names:
            v = r[k]
            print(f"  {name:>16} | {k:<34} {v['wall_s'] * 1e3:9.1f} ms wall {v['cpu_s'] * 1e3:9.1f} ms cpu"
                  f"  x{base['wall_s'] / v['wall_s']:.2f} wall x{base['cpu_s'] / v['cpu_s']:.2f} cpu", flush=True)
        res[name] = r
        return r

    def data_path():
        """(e) the training data path: 5 batches of B clips."""
        if len(X) < 5 * B:
            return
        from skattloc.data import ClipDataset, pad_collate

        class ClipByClip(ClipDataset):
            __getitems__ = None  # the DataLoader then fetches clip by clip and stacks (before)

        dl = train_loader(X, Y, B, args.seed)
        dl_before = torch.utils.data.DataLoader(ClipByClip(X, Y), batch_size=B, shuffle=True,
                                                generator=torch.Generator().manual_seed(args.seed), collate_fn=pad_collate)
        Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
        perm = torch.randperm(len(X))

        def five(loader):
            def f():
                for i, _ in enumerate(loader):
                    if i == 4:
                        break
            return f

        def gather_batches():
            for i in range(5):
                idx = perm[i * B:(i + 1) * B]
                Xt[idx], Yt[idx]

        report("data, 5 batches", {"tensor gather (plain loop)": gather_batches,
                                   "DataLoader, clip by clip (before)": five(dl_before),
                                   "DataLoader, one gather (fit, now)": five(dl)})

    if only_data:
        data_path()
        return res

    net = CGRNN(n_mels, n_classes, **net_kwargs(args))  # the fast paths
    slow = CGRNN(n_mels, n_classes, **net_kwargs(args))  # plain layers: unfold conv, nn.GRU
    slow.cpu_fast_path = False
    plain = PlainCGRNN(n_mels, n_classes, **net_kwargs(args))
    slow.load_state_dict(net.state_dict())
    plain.load_state_dict(net.state_dict())

    # (a) the per-frame convolution + ReLU + max over positions, forward and weight gradient
    def conv_plain():
        c = plain.conv(x.reshape(-1, 1, n_mels))
        torch.relu(c).max(dim=2).values.sum().backward()

    report("conv fwd+bwd", {"Conv1d per frame (plain)": conv_plain,
                            "unfold + matmul + amax": lambda: slow._cnn(x).sum().backward(),
                            "banded matmul, argmax kept (now)": lambda: net._cnn(x).sum().backward()})

    # (b) the 3-layer bidirectional GRU, forward and backward
    h_in = torch.randn(B, X.shape[1], args.n_filters, requires_grad=True)
    report("GRU fwd+bwd", {"nn.GRU (plain)": lambda: net.gru(h_in)[0].sum().backward(),
                           "bigru (now)": lambda: _fastpath.bigru(net.gru, h_in).sum().backward()})

    # (c) a whole training step: forward, BCE, backward, Adam
    def step_fn(model, get_clip):
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)

        def step():
            loss = clip_bce(get_clip(model(x)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    report("train step", {"PlainCGRNN": step_fn(plain.train(), lambda o: o["clip"]),
                          "CGRNN, plain layers": step_fn(slow.train(), lambda o: o.clip),
                          "CGRNN, fast paths (now)": step_fn(net.train(), lambda o: o.clip)})

    # (d) inference forward pass, one batch
    def infer(model):
        def f():
            with torch.inference_mode():
                model(x)
        return f

    report("inference batch", {"PlainCGRNN": infer(plain.eval()), "CGRNN, plain layers": infer(slow.eval()),
                               "CGRNN, fast paths (now)": infer(net.eval())})

    data_path()

    # (f) torch.compile of the network's training step (plain layers and fast paths)
    if args.compile:
        for label, base in (("plain layers", slow), ("fast paths", net)):
            cnet = CGRNN(n_mels, n_classes, **net_kwargs(args))
            cnet.load_state_dict(base.state_dict())
            cnet.cpu_fast_path = base.cpu_fast_path
            compiled = torch.compile(cnet)
            step_c = step_fn(compiled.train(), lambda o: o.clip)
            t0 = time.perf_counter()
            step_c()
            compile_s = time.perf_counter() - t0
            print(f"  torch.compile ({label}): first step, compile included, {compile_s:.1f} s", flush=True)
            r = report(f"compile, {label}", {f"CGRNN, {label}": step_fn(base.train(), lambda o: o.clip),
                                             f"CGRNN, {label}, compiled": step_c})
            r["compile_s"] = compile_s
    return res


# ------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer clips and repeats: 85 s on 2 quiet cores")
    p.add_argument("--sections", default="train,infer,parts", help="comma-separated: train, infer, parts (data: only the data-path part)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    p.add_argument("--n-clips", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of the training comparison")
    p.add_argument("--part-repeats", type=int, default=5)
    p.add_argument("--infer-repeats", type=int, default=3)
    p.add_argument("--frames", type=int, default=249)
    p.add_argument("--mels", type=int, default=40)
    p.add_argument("--classes", type=int, default=5)
    p.add_argument("--data", choices=["random", "weak"], default="random")
    p.add_argument("--pooling", default="att_loc", choices=["att_loc", "att", "mean"])
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--n-filters", type=int, default=128)
    p.add_argument("--kernel-size", type=int, default=30)
    p.add_argument("--rnn-hidden", type=int, default=128)
    p.add_argument("--rnn-layers", type=int, default=3)
    p.add_argument("--dense-units", type=int, default=500)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--compile", action="store_true", help="parts: also time torch.compile'd training steps (slow to compile)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write all numbers to this JSON file")
    if "--quick" in (sys.argv[1:] if argv is None else argv):  # smaller defaults; explicit flags still win
        p.set_defaults(n_clips=200, rounds=2, part_repeats=2, infer_repeats=1)
    args = p.parse_args(argv)
    args.infer_clips = {1: 10, 16: 32, 100: 100} if args.quick else {1: 50, 16: 160, 100: 300}
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    info = machine_info(threads)
    print(f"machine: {info}", flush=True)
    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}", flush=True)
    X, Y = make_data(args.n_clips, args.frames, args.mels, args.classes, args.seed, args.data)
    print(f"data: {args.data} X {X.shape}, Y {Y.shape}; model: {net_kwargs(args)}; batch {args.batch_size}", flush=True)
    results = {"machine": info, "args": {k: v for k, v in vars(args).items() if k != "infer_clips"}}
    sections = args.sections.split(",")
    if "train" in sections:
        print("== training: clips/s, alternating rounds", flush=True)
        tr = bench_train(args, X, Y)
        results["train"] = tr
        for s, v in tr["median"].items():
            print(f"  median {s:>12}: {v['clips_per_s']:6.2f} clips/s end-to-end, {v['steady_clips_per_s']:6.2f} steady")
        for k, v in tr["paired_ratio_median"].items():
            print(f"  ratio {k}: {v:.3f}")
    if "infer" in sections:
        print("== inference", flush=True)
        results["infer"] = bench_infer(args, X, Y)
    if "parts" in sections:
        print("== optimizations, before -> after (median of alternated repeats)", flush=True)
        results["parts"] = bench_parts(args, X, Y)
    elif "data" in sections:
        print("== the training data path only (median of alternated repeats)", flush=True)
        results["data"] = bench_parts(args, X, Y, only_data=True)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    results["machine"]["loadavg_end"] = None if load is None else [round(v, 2) for v in load]
    print(f"load average at the end: {results['machine']['loadavg_end']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=float)
        print(f"wrote {args.json}")
    return results


if __name__ == "__main__":
    main()
