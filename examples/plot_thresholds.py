"""
Choose decision thresholds
==========================

Scores become decisions through thresholds: one per tag on the clip probabilities (is the
tag present?) and, per tag, the event post-processing of the frame scores (when?). Both are
chosen on validation clips and then applied unchanged to test clips.
"""

# %%
# Train, and split the remaining clips into validation and test
# ---------------------------------------------------------------
import numpy as np

from skattloc import AttLocTagger, LogMelExtractor, make_weak_events

classes = ["tone", "chirp", "noise_burst"]
audio, Y, events = make_weak_events(n_clips=200, n_classes=3, duration=2.0, snr_db=(-6.0, 6.0),
                                    random_state=2)
extractor = LogMelExtractor()
X = extractor.fit_transform(audio)
train, val, test = np.arange(120), np.arange(120, 160), np.arange(160, 200)
tagger = AttLocTagger(rnn_hidden=32, rnn_layers=1, dense_units=64, batch_size=30,
                      learning_rate=3e-3, max_epochs=8, random_state=0).fit(X[train], Y[train])

# %%
# Clip-level thresholds
# ---------------------
# ``predict`` uses one threshold (0.5) for every tag. Per tag, the threshold with the
# best F1 on the validation clips may differ; compare both on the test clips.
from sklearn.metrics import f1_score, precision_recall_curve

proba_val, proba_test = tagger.predict_proba(X[val]), tagger.predict_proba(X[test])
clip_thr = []
for k in range(len(classes)):
    precision, recall, thr = precision_recall_curve(Y[val][:, k], proba_val[:, k])
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    clip_thr.append(float(thr[np.argmax(f1[:-1])]))
print("per-tag clip thresholds:", {c: round(t, 3) for c, t in zip(classes, clip_thr)})
for name, thr in (("0.5", 0.5), ("tuned", np.array(clip_thr))):
    f1 = f1_score(Y[test], (proba_test >= thr).astype(int), average="macro", zero_division=0)
    print(f"clip threshold {name:6s}: test macro F1 {f1:.3f}")

# %%
# Event post-processing: from clip tags, or from a few event times
# ------------------------------------------------------------------
# ``fit`` held out 10 % of the training clips and calibrated the per-tag event settings on
# them from their clip tags alone (``event_settings_``, source ``"weak"``). With event
# times for the validation clips, :meth:`~skattloc.AttLocTagger.tune_events` tunes the
# same settings for the best event-based F1. Both are scored on the test clips.
import copy

from skattloc.metrics import event_based_metrics, segment_based_metrics

names = [f"clip{i}" for i in test]
reference = [(f"clip{c}", on, off, lab) for c, on, off, lab in events if c in set(test)]


def score(t, **overrides):
    # Y is a 0/1 matrix, so classes_ are 0, 1, 2: name the events for the metrics
    found = [(f, on, off, classes[int(k)]) for f, on, off, k in t.detect_events(X[test], filenames=names, **overrides)]
    ev = event_based_metrics(reference, found, classes, filenames=names)
    seg = segment_based_metrics(reference, found, classes, segment_length=0.5, filenames=names, durations=2.0)
    return len(found), ev["f_measure"], seg["f_measure"]


print("weak settings:", tagger.get_event_postprocessor())
strong = copy.deepcopy(tagger)
val_names = [f"clip{i}" for i in val]
val_events = [(f"clip{c}", on, off, str(classes.index(lab))) for c, on, off, lab in events if c in set(val)]
strong.tune_events(X[val], reference=val_events, filenames=val_names)
plain = dict(threshold=0.5, threshold_low=0.5, median_filter=0.1, min_gap=0.0, min_duration=0.0, clip_threshold=0.5)
for label, t, overrides in (("one threshold 0.5, 0.1 s median", tagger, plain),
                            ("weak: clip tags of the 10 % split", tagger, {}),
                            ("strong: 40 clips with event times", strong, {})):
    n, f_event, f_seg = score(t, **overrides)
    print(f"{label:34s}: {n:3d} events ({len(reference)} true), event F1 {f_event:.3f}, 0.5 s segment F1 {f_seg:.3f}")

# %%
# The hysteresis of the weak settings on one test clip: an event starts where the score
# reaches the event threshold (dashed) and extends while it stays above the low threshold
# (dotted).
from matplotlib.figure import Figure

pp = tagger.get_event_postprocessor()
i = int(np.flatnonzero(Y[test].sum(1) >= 1)[0])
smoothed = pp.smooth(tagger.localize(X[test][i : i + 1]), timing=extractor.frame_timing)[0]
t_axis = extractor.frame_times(len(smoothed))
fig = Figure(figsize=(7, 3.5), layout="constrained")
ax = fig.subplots()
for k, name in enumerate(classes):
    ax.plot(t_axis, smoothed[:, k], color=f"C{k}", label=name)
    ax.axhline(pp.threshold[k], color=f"C{k}", ls="--", lw=0.8)
    ax.axhline(pp.threshold_low[k], color=f"C{k}", ls=":", lw=0.8)
for c, on, off, lab in events:
    if c == test[i]:
        ax.axvspan(on, off, color=f"C{classes.index(lab)}", alpha=0.15)
ax.set_xlabel("time (s)")
ax.set_ylabel("median-filtered frame score")
_ = ax.legend(frameon=False, loc="upper right")
