"""Figures: a clip's localization in the style of the paper's Fig. 3, and learning curves.

Every function builds a :class:`matplotlib.figure.Figure` directly, without ``pyplot``, so
it works under any backend (``Agg`` included), in threads and on headless machines, and
leaves no global figure state behind. Save with ``fig.savefig(path)``.
"""
from __future__ import annotations

import numpy as np

from .events import check_timing

__all__ = ["plot_localization", "plot_history"]


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def plot_localization(
    features,
    frame_scores,
    classes,
    events=None,
    attention=None,
    *,
    timing,
    clip_scores=None,
    title=None,
    score_label="localize output",
    figsize=(9.0, 6.5),
):
    """One clip: log-mel spectrogram, per-class frame scores with the true events, attention.

    The three panels of the paper's Fig. 3: (i) the log-mel spectrogram, (ii) the
    frame-level output of each class (e.g. :meth:`AttLocTagger.localize` for one clip),
    with every true event drawn as a shaded span and a bar in its class's colour, and
    (iii) the attention factor ``z_att(t)`` of eq. (3). All panels share the time axis.

    Parameters
    ----------
    features : ndarray, shape (n_frames, n_mels)
        The clip's log-mel frames, time first.
    frame_scores : ndarray, shape (n_frames, n_classes)
        Frame scores, typically in [0, 1].
    classes : sequence of str, length n_classes
        Class labels (legend).
    events : list of tuple, optional
        True events of this clip, ``(onset_s, offset_s, label)`` or
        ``(filename, onset_s, offset_s, label)``; labels must be in ``classes``.
    attention : ndarray, shape (n_frames,), optional
        ``z_att(t)``; without it the figure has two panels.
    timing : FrameTiming, LogMelExtractor, dict, float or (float, float)
        The frames' timing (keyword only, required): the
        :class:`~skattloc.timing.FrameTiming` of the features (or their
        :class:`~skattloc.LogMelExtractor`, or a pair ``(hop_s, offset_s)`` in seconds).
        Frame ``t`` is drawn at its centre ``offset_s + (t + 0.5) * hop_s``; the time axis
        spans ``offset_s`` to ``offset_s + n_frames * hop_s``.
    clip_scores : ndarray, shape (n_classes,), optional
        Clip-level probabilities, shown in the legend.
    title : str, optional
        Figure title.
    score_label : str, default="localize output"
        Y-axis label of the frame-score panel.
    figsize : (float, float), default=(9.0, 6.5)
        Inches.

    Returns
    -------
    matplotlib.figure.Figure
        Two or three panels on one time axis in seconds, and the spectrogram's colour bar.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from skattloc import LogMelExtractor
    >>> from skattloc.plotting import plot_localization
    >>> rng = np.random.default_rng(0)
    >>> fig = plot_localization(rng.normal(size=(249, 40)), rng.uniform(size=(249, 2)),
    ...                         ["dog", "cat"], events=[(0.5, 1.2, "dog")],
    ...                         attention=rng.uniform(size=249), timing=LogMelExtractor())
    >>> len(fig.axes)  # three panels and the spectrogram's colour bar
    4
    >>> fig.savefig(io.BytesIO(), format="png")
    """
    timing = check_timing(timing)
    features = np.asarray(features, dtype=float)
    scores = np.asarray(frame_scores, dtype=float)
    classes = [str(c) for c in classes]
    if features.ndim != 2:
        raise ValueError(f"features must be 2-D (n_frames, n_mels), got shape {features.shape}")
    if scores.ndim != 2 or scores.shape[0] != features.shape[0]:
        raise ValueError(
            f"frame_scores must be 2-D (n_frames, n_classes) with n_frames={features.shape[0]} "
            f"like features; got shape {scores.shape}"
        )
    if len(classes) != scores.shape[1]:
        raise ValueError(f"classes has {len(classes)} labels but frame_scores has {scores.shape[1]} columns")
    if attention is not None:
        attention = np.asarray(attention, dtype=float).reshape(-1)
        if attention.shape[0] != features.shape[0]:
            raise ValueError(f"attention must have one value per frame ({features.shape[0]}), got {attention.shape[0]}")
    spans = []
    for ev in events or []:
        ev = tuple(ev)
        if len(ev) == 4:
            ev = ev[1:]
        if len(ev) != 3:
            raise ValueError(f"events must be (onset_s, offset_s, label) or (filename, onset_s, offset_s, label); got {ev!r}")
        on, off, label = float(ev[0]), float(ev[1]), str(ev[2])
        if label not in classes:
            raise ValueError(f"event label {label!r} is not in classes={classes!r}")
        spans.append((on, off, label))
    if clip_scores is not None:
        clip_scores = np.asarray(clip_scores, dtype=float).reshape(-1)
        if clip_scores.shape[0] != len(classes):
            raise ValueError(f"clip_scores must have {len(classes)} values, got {clip_scores.shape[0]}")

    n_frames = features.shape[0]
    edges = timing.frame_edges(n_frames)
    t0, t1 = float(edges[0]), float(edges[-1])
    centres = timing.frame_times(n_frames)
    n_panels = 3 if attention is not None else 2
    ratios = [1.2, 1.0, 0.55][:n_panels]
    fig = _figure(figsize)
    axes = fig.subplots(n_panels, 1, sharex=True, gridspec_kw={"height_ratios": ratios})
    colors = [f"C{k % 10}" for k in range(len(classes))]

    ax = axes[0]
    im = ax.imshow(
        features.T, origin="lower", aspect="auto", extent=(t0, t1, -0.5, features.shape[1] - 0.5),
        cmap="magma", interpolation="nearest",
    )
    fig.colorbar(im, ax=ax, label="log mel power", pad=0.01)
    ax.set_ylabel("mel band")
    ax.set_title("(i) log-mel spectrogram", loc="left", fontsize=9)

    ax = axes[1]
    for on, off, label in spans:
        k = classes.index(label)
        ax.axvspan(on, off, color=colors[k], alpha=0.15, lw=0)
    for k, c in enumerate(classes):
        name = c if clip_scores is None else f"{c} (clip {clip_scores[k]:.2f})"
        ax.plot(centres, scores[:, k], color=colors[k], lw=1.4, label=name)
    # True events as bars above the curves.
    top = max(1.0, float(np.nanmax(scores)) if scores.size else 1.0)
    for on, off, label in spans:
        k = classes.index(label)
        y = top * (1.04 + 0.035 * k)
        ax.plot([on, off], [y, y], color=colors[k], lw=4, solid_capstyle="butt")
    ax.set_ylim(min(0.0, float(np.nanmin(scores))) - 0.02, top * (1.08 + 0.035 * len(classes)))
    ax.set_ylabel(score_label)
    ax.set_title("(ii) frame output per class; bars and shading: true events", loc="left", fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)

    if attention is not None:
        ax = axes[2]
        ax.plot(centres, attention, color="k", lw=1.2)
        for on, off, label in spans:
            ax.axvspan(on, off, color=colors[classes.index(label)], alpha=0.15, lw=0)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("z_att(t)")
        ax.set_title("(iii) attention factor", loc="left", fontsize=9)
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(t0, t1)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_history(history, keys=None, figsize=(6.0, 3.5)):
    """Learning curves from ``AttLocTagger.history_`` (or any list of per-epoch dicts).

    Parameters
    ----------
    history : list of dict
        One dict per epoch with an ``"epoch"`` key and metric values.
    keys : sequence of str, optional
        Metrics to draw; default every key other than ``"epoch"``. Losses go on the left
        axis, other metrics (``val_auroc``, ``val_map``...) on a right axis.
    figsize : (float, float), default=(6.0, 3.5)
        Inches.

    Returns
    -------
    matplotlib.figure.Figure
        One axis: losses on the left scale, other metrics on a right one, per epoch.

    Examples
    --------
    >>> from skattloc.plotting import plot_history
    >>> fig = plot_history([{"epoch": 0, "train_loss": 0.6}, {"epoch": 1, "train_loss": 0.4}])
    >>> fig.axes[0].get_ylabel()
    'loss'
    """
    history = list(history)
    if not history:
        raise ValueError("history is empty; fit the estimator first (history_ has one dict per epoch)")
    if keys is None:
        keys = sorted({k for row in history for k in row if k != "epoch"})
    keys = list(keys)
    missing = [k for k in keys if not any(k in row for row in history)]
    if missing:
        raise ValueError(f"history has no values for {missing}; available: {sorted({k for r in history for k in r})}")
    fig = _figure(figsize)
    ax = fig.add_subplot()
    ax2 = None
    for i, key in enumerate(keys):
        xs = [row.get("epoch", j) + 1 for j, row in enumerate(history) if key in row]
        ys = [row[key] for row in history if key in row]
        if "loss" in key:
            ax.plot(xs, ys, marker="o", ms=3, label=key, color=f"C{i}")
        else:
            ax2 = ax2 or ax.twinx()
            ax2.plot(xs, ys, marker="s", ms=3, ls="--", label=key, color=f"C{i}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    handles, labels = ax.get_legend_handles_labels()
    if ax2 is not None:
        ax2.set_ylabel("metric")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, fontsize=8, frameon=False)
    return fig
