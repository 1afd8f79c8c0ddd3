"""
Choose decision thresholds
==========================

Scores become decisions through thresholds: one per tag on the clip probabilities (is the
tag present?) and one per tag on the frame scores (when?). Thresholds are chosen on
validation clips and then applied unchanged to test clips.
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
# Frame-level thresholds
# ----------------------
# With strong labels on the validation clips, :func:`~skattloc.events.tune_thresholds`
# picks the frame-F1-optimal threshold per tag. The segment-based F1 on test clips
# measures the resulting events.
from skattloc.events import events_to_frames, frames_to_events, tune_thresholds
from skattloc.metrics import segment_based_metrics

def frame_truth(idx):
    return events_to_frames(events, None, classes, X.shape[1], hop_s=extractor.hop_seconds,
                            offset_s=extractor.frame_offset_seconds, n_clips=len(X))[idx]

scores_val, scores_test = tagger.localize(X[val]), tagger.localize(X[test])
frame_thr = tune_thresholds(frame_truth(val), scores_val, classes=classes)
print("per-tag frame thresholds:", {c: round(t, 3) for c, t in frame_thr.items()})

names = [f"clip{i}" for i in test]
reference = [(f"clip{c}", on, off, label) for c, on, off, label in events if c in set(test)]
present = proba_test >= 0.5
for name, thr in (("0.5", 0.5), ("tuned", frame_thr)):
    found = frames_to_events(scores_test * present[:, None, :], classes, hop_s=extractor.hop_seconds,
                             offset_s=extractor.frame_offset_seconds, threshold=thr,
                             median_filter=7, filenames=names, clip_duration=2.0)
    seg = segment_based_metrics(reference, found, classes, segment_length=0.5, filenames=names,
                                durations=2.0)
    print(f"frame threshold {name:6s}: {len(found):3d} events, test segment F1 {seg['f_measure']:.3f}")

# %%
# Frame F1 on the validation clips as a function of the threshold, per tag: the tuned
# threshold sits at each curve's maximum.
from matplotlib.figure import Figure

grid = np.linspace(0.02, 0.98, 49)
truth_val = frame_truth(val).reshape(-1, len(classes))
flat_val = scores_val.reshape(-1, len(classes))
fig = Figure(figsize=(7, 3.5), layout="constrained")
ax = fig.subplots()
for k, name in enumerate(classes):
    f1 = [f1_score(truth_val[:, k], flat_val[:, k] >= g, zero_division=0) for g in grid]
    ax.plot(grid, f1, color=f"C{k}", label=name)
    ax.axvline(frame_thr[name], color=f"C{k}", ls=":")
ax.set_xlabel("frame threshold")
ax.set_ylabel("validation frame F1")
_ = ax.legend(frameon=False)
