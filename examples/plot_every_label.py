"""
===================================================
Use every label: tags, a few event times, unlabeled
===================================================

Most clips of a real data set have tags, a few have hand-annotated event times, and many
have no label at all. :meth:`AttLocTagger.fit <skattloc.AttLocTagger.fit>` learns from all
three: a clip loss on tags, a frame loss on event times, and a mean teacher's consistency
loss on every clip. Unlabeled clips are rows of ``None`` in ``y`` (or -1 in a 0/1 matrix).
"""

# %%
# Data: 240 synthetic clips of 1 s with faint events; we keep tags for 30, event times for
# 20, nothing for the rest, and hold 40 out to score.
import matplotlib.pyplot as plt
import numpy as np

from skattloc import AttLocTagger, LogMelExtractor, make_weak_events
from skattloc.events import events_to_frames
from skattloc.metrics import equal_error_rate, frame_auc

names = ["tone", "chirp", "noise_burst"]
audio, Y, events = make_weak_events(n_clips=240, n_classes=3, duration=1.0, snr_db=(-12.0, -3.0), random_state=0)
X = LogMelExtractor().fit_transform(audio)  # frames that carry their timing (16 ms hop)
tags = [tuple(names[k] for k in np.flatnonzero(row)) for row in Y]
train, test = np.arange(200), np.arange(200, 240)
tagged, timed = train[:30], train[30:50]

# %%
# Three fits of one small network: tags alone, tags and event times, and tags, event times
# and the unlabeled rest with the mean teacher.
small = dict(rnn_hidden=16, rnn_layers=1, dense_units=32, n_filters=16, conv_blocks=2, max_epochs=12,
             learning_rate=3e-3, batch_size=20, validation_fraction=0, random_state=0)
y_tags = [tags[i] for i in tagged]
timed_events = [e for e in events if e[0] in set(timed)]  # (clip index, onset s, offset s, tag)
runs = {
    "30 tagged": AttLocTagger(**small).fit(X[tagged], y_tags),
    "+ 20 timed": AttLocTagger(**small).fit(X[train[:50]], y_tags + [tags[i] for i in timed], events=timed_events),
    "+ 150 unlabeled": AttLocTagger(**small).fit(
        X[train], y_tags + [tags[i] for i in timed] + [None] * 150, events=timed_events),
}
print({name: t.label_counts_ for name, t in runs.items()})

# %%
# Held-out clips: tagging (macro EER, lower is better) and localization (frame AUC against
# the true event times, higher is better). One seed on a small synthetic set: a picture of
# the interface, not a measurement; :doc:`../label_curves` measures it on real recordings.
truth = events_to_frames([e for e in events if e[0] >= 200], None, names, X.shape[1],
                         timing=X.frame_timing, n_clips=240)[test]
order = [list(runs["30 tagged"].classes_).index(c) for c in names]
eer = {k: equal_error_rate(Y[test], t.predict_proba(X[test])[:, order]) for k, t in runs.items()}
auc = {k: frame_auc(truth, t.localize(X[test])[:, :, order]) for k, t in runs.items()}
for k in runs:
    print(f"{k:16s} EER {eer[k]:.3f}  frame AUC {auc[k]:.3f}")

fig, axes = plt.subplots(1, 2, figsize=(8, 3))
axes[0].bar(list(eer), list(eer.values()), color="tab:blue")
axes[0].set(title="macro EER (held out)", ylim=(0, max(0.05, max(eer.values()) * 1.2)))
axes[1].bar(list(auc), list(auc.values()), color="tab:green")
axes[1].set(title="frame AUC (held out)", ylim=(0.5, 1.0))
for ax in axes:
    ax.tick_params(axis="x", labelsize=8)
fig.tight_layout()
plt.show()
