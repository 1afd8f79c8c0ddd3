"""
Compare the pooling choices
===========================

``pooling`` sets how the frame outputs ``O(t)`` become the clip probability: the paper's
attention and localization (``"att_loc"``, eq. 7-8), attention only (``"att"``, eq. 5), the
plain mean (``"mean"``, eq. 2) or linear softmax (``"linear_softmax"``,
``sum O^2 / sum O``). Here each is trained on the same synthetic clips and
compared on held-out clips, for tagging (EER) and localization (frame AUC of the
``localize`` output against the true event times).
"""

# %%
# Data and one small network per pooling
# ---------------------------------------
import numpy as np

from skattloc import AttLocTagger, LogMelExtractor, make_weak_events
from skattloc.events import events_to_frames
from skattloc.metrics import equal_error_rate, frame_auc

classes = ["tone", "chirp", "noise_burst"]
audio, Y, events = make_weak_events(n_clips=160, n_classes=3, duration=2.0, random_state=1)
extractor = LogMelExtractor()
X = extractor.fit_transform(audio)
train, test = np.arange(120), np.arange(120, 160)
truth = events_to_frames(events, None, classes, X.shape[1], timing=extractor.frame_timing, n_clips=len(X))[test]

results = {}
for pooling in ("att_loc", "att", "mean", "linear_softmax"):
    tagger = AttLocTagger(pooling=pooling, rnn_hidden=32, rnn_layers=1, dense_units=64,
                          batch_size=30, learning_rate=3e-3, max_epochs=8, random_state=0)
    tagger.fit(X[train], Y[train])
    scores = tagger.localize(X[test])
    results[pooling] = {
        "eer": equal_error_rate(Y[test], tagger.predict_proba(X[test])),
        "frame_auc": frame_auc(truth, scores),
        "example": scores[0],
    }
    print(f"{pooling:8s} macro EER {results[pooling]['eer']:.3f}   "
          f"frame AUC {results[pooling]['frame_auc']:.3f}")

# %%
# The numbers, and one held-out clip's frame scores under each pooling
# ----------------------------------------------------------------------
# With so little data and training the differences between the poolings are small and
# noisy; the benchmarks page compares them on real recordings with cross-validation.
from matplotlib.figure import Figure

names = list(results)
fig = Figure(figsize=(9, 7), layout="constrained")
axes = fig.subplots(len(names) + 1, 1, sharex=False, height_ratios=[1.2] + [1] * len(names))
pos = np.arange(len(names))
axes[0].bar(pos - 0.2, [results[p]["eer"] for p in names], 0.4, label="macro EER (lower is better)")
axes[0].bar(pos + 0.2, [results[p]["frame_auc"] for p in names], 0.4, label="frame AUC (higher is better)")
axes[0].set_xticks(pos, names)
axes[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
t = extractor.frame_times(X.shape[1])
true_events = [(on, off, label) for c, on, off, label in events if c == test[0]]
for ax, pooling in zip(axes[1:], names):
    for k, name in enumerate(classes):
        ax.plot(t, results[pooling]["example"][:, k], color=f"C{k}", label=name)
    for on, off, label in true_events:
        ax.axvspan(on, off, color=f"C{classes.index(label)}", alpha=0.15)
    ax.set_ylabel(pooling)
    ax.set_ylim(0, 1.05)
axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
_ = axes[-1].set_xlabel("time (s); shaded: true events")
