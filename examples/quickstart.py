"""Quickstart: tag and localize synthetic sound events from clip-level labels only.

Run it with ``python examples/quickstart.py [--out DIR]``. It

1. synthesises 440 clips of 4 s with 4 event types at known times
   (:func:`skattloc.make_weak_events`),
2. trains :class:`skattloc.AttLocTagger` on the clip tags of 320 clips (no event times),
3. prints the per-class and macro equal error rate (EER, DCASE 2016 Task 4) on the 120
   held-out clips, and how well the frame-level output (``localize``) locates the events
   there (:mod:`skattloc.metrics`: frame AUC and AP, 1 s segment-based F1),
4. saves a figure of one held-out clip's localization next to its true event times
   (:func:`skattloc.plotting.plot_localization`) and prints its path and the wall time.

Settings: the default recipe (CRNN front end, attention and localization, augmentation,
weight averaging, a 10 % validation split that calibrates the event post-processing) with a
smaller recurrent part (1 bidirectional GRU layer of 32 units and 64 dense units) for 10
epochs at learning rate 3e-3 and batches of 32. The task is easy enough for it, and it keeps
the run within a few minutes on 2 CPU cores.
"""
import argparse
import os
import time

import numpy as np

from skattloc import AttLocTagger, LogMelExtractor, make_weak_events
from skattloc.events import events_to_frames
from skattloc.metrics import (
    equal_error_rate,
    event_based_metrics,
    frame_auc,
    frame_average_precision,
    segment_based_metrics,
)

N_TRAIN, N_TEST = 320, 120
CLASSES = ["tone", "chirp", "noise_burst", "click_train"]


def main(out_dir="."):
    t_start = time.perf_counter()
    # 1. Data: waveforms, clip tags Y (n_clips, n_classes) and the true event times.
    audio, Y, events = make_weak_events(
        n_clips=N_TRAIN + N_TEST, n_classes=len(CLASSES), duration=4.0, random_state=0
    )
    ext = LogMelExtractor()  # 40 log-mel bands, 16 ms hop
    X = ext.fit_transform(audio)  # (n_clips, 249 frames, 40)
    train, test = slice(0, N_TRAIN), slice(N_TRAIN, N_TRAIN + N_TEST)
    t_data = time.perf_counter() - t_start

    # 2. Train on clip tags only.
    tagger = AttLocTagger(
        rnn_hidden=32, rnn_layers=1, dense_units=64, batch_size=32, learning_rate=3e-3,
        max_epochs=10, random_state=0,
    )
    tagger.fit(X[train], Y[train])
    t_fit = time.perf_counter() - t_start - t_data

    # 3a. Tagging: equal error rate per class on held-out clips (lower is better).
    proba = tagger.predict_proba(X[test])
    eer = equal_error_rate(Y[test], proba, average=None)
    print("Held-out clip tagging (EER, lower is better):")
    for name, e in zip(CLASSES, eer):
        print(f"  {name:<12s} {e:.3f}")
    print(f"  {'macro':<12s} {np.nanmean(eer):.3f}")

    # 3b. Localization: frame scores against the true event times of held-out clips.
    scores = tagger.localize(X[test])  # (n_test, n_frames, n_classes), values in [0, 1]
    n_frames = X.shape[1]
    truth = events_to_frames(
        events, None, CLASSES, n_frames, timing=ext.frame_timing, n_clips=len(X),
    )[test]
    print("Held-out frame-level localization (higher is better):")
    print(f"  frame AUC            {frame_auc(truth, scores):.3f}")
    print(f"  frame AP             {frame_average_precision(truth, scores):.3f}")
    # Events, as `skattloc localize` makes them: the per-class post-processing that fit
    # calibrated on its validation clips from their clip tags (thresholds with hysteresis,
    # median filter, gaps, clip gate); scored against the true event times (DCASE metrics).
    names = [f"clip{i:03d}" for i in range(N_TEST)]
    # Y is a 0/1 matrix, so the tagger's classes_ are 0..3: name them for the metrics.
    est = [(f, on, off, CLASSES[int(k)]) for f, on, off, k in tagger.detect_events(X[test], filenames=names)]
    ref = [(names[i - N_TRAIN], on, off, lab) for i, on, off, lab in events if i >= N_TRAIN]
    seg = segment_based_metrics(ref, est, CLASSES, segment_length=1.0, filenames=names, durations=4.0)
    ev = event_based_metrics(ref, est, CLASSES, t_collar=0.2, percentage_of_length=0.2, filenames=names)
    print(f"  segment F1 (1 s)     {seg['f_measure']:.3f}")
    print(f"  event F1 (0.2 s)     {ev['f_measure']:.3f}  ({len(est)} events written, {len(ref)} true)")

    # 4. Figure of one held-out clip: spectrogram, frame scores with true events, attention.
    i = next(j for j in range(N_TEST) if Y[N_TRAIN + j].sum() >= 2) if Y[test].sum(1).max() >= 2 else 0
    path = os.path.join(out_dir, "quickstart_localization.png")
    outputs = tagger.frame_outputs(X[test][i : i + 1])[0]
    true_events = [(on, off, lab) for c, on, off, lab in events if c == N_TRAIN + i]
    _plot(X[test][i], scores[i], outputs.get("att"), true_events, proba[i], ext, path)
    print(f"Figure of held-out clip {i}: {os.path.abspath(path)}")
    print(f"Wall time: {time.perf_counter() - t_start:.1f} s (data and features {t_data:.1f} s, "
          f"training {t_fit:.1f} s)")


def _plot(features, frame_scores, attention, true_events, clip_scores, ext, path):
    try:
        from skattloc.plotting import plot_localization
    except ImportError:  # older skattloc: a plain matplotlib figure
        plot_localization = None
    if plot_localization is not None:
        fig = plot_localization(
            features, frame_scores, CLASSES, events=true_events, attention=attention,
            timing=ext.frame_timing, clip_scores=clip_scores,
        )
    else:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(9, 4))
        ax = fig.subplots()
        t = ext.frame_times(len(frame_scores))
        for k, c in enumerate(CLASSES):
            ax.plot(t, frame_scores[:, k], label=c, color=f"C{k}")
        for on, off, lab in true_events:
            ax.axvspan(on, off, color=f"C{CLASSES.index(lab)}", alpha=0.2)
        ax.set_xlabel("time (s)")
        ax.legend()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".", help="folder for the figure (default: .)")
    main(parser.parse_args().out)
