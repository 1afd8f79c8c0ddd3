"""
==============================================
Tag clips and localize events from weak labels
==============================================

Train :class:`~skattloc.AttLocTagger` on clip-level tags only, then ask it *when* each
event happens. The clips are synthetic (:func:`~skattloc.make_weak_events`), so the true
event times are known and we can check the localization against them.
"""

# %%
# Data: clips, weak labels and (hidden) true event times
# --------------------------------------------------------
# ``Y`` holds the weak labels: ``Y[i, k] = 1`` if clip ``i`` contains an event of type
# ``k``. ``events`` holds the true onsets and offsets; training never sees them.
import numpy as np

from skattloc import AttLocTagger, LogMelExtractor, make_weak_events

classes = ["tone", "chirp", "noise_burst"]
audio, Y, events = make_weak_events(n_clips=200, n_classes=3, duration=2.0, random_state=0)
extractor = LogMelExtractor()
X = extractor.fit_transform(audio)  # (200 clips, 124 frames, 40 mel bands)
train, test = np.arange(160), np.arange(160, 200)
print(X.shape, "clips with tags:", Y[train].sum(axis=0), "of", len(train))

# %%
# Train on the weak labels
# ------------------------
# A small network (one GRU layer of 32 units) keeps this example fast on a CPU; the
# defaults are the paper's larger network.
tagger = AttLocTagger(rnn_hidden=32, rnn_layers=1, dense_units=64, batch_size=32,
                      learning_rate=3e-3, max_epochs=10, random_state=0)
tagger.fit(X[train], Y[train])

# %%
# Tagging quality: equal error rate per tag on held-out clips (lower is better).
from skattloc.metrics import equal_error_rate

proba = tagger.predict_proba(X[test])
for name, eer in zip(classes, equal_error_rate(Y[test], proba, average=None)):
    print(f"{name:12s} EER {eer:.3f}")

# %%
# Localization: frame scores next to the true events
# ----------------------------------------------------
# :meth:`~skattloc.AttLocTagger.localize` gives a score in [0, 1] per frame and tag.
# :func:`skattloc.plotting.plot_localization` draws one clip as in the paper's Fig. 3:
# the spectrogram, each tag's frame scores with the true events (shaded), and the
# attention ``z_att(t)``.
from skattloc.plotting import plot_localization

scores = tagger.localize(X[test])  # (40, 124, 3)
i = int(np.argmax(Y[test].sum(axis=1)))  # a held-out clip with several events
outputs = tagger.frame_outputs(X[test][i : i + 1])[0]
truth = [(on, off, label) for c, on, off, label in events if c == test[i]]
fig = plot_localization(X[test][i], scores[i], classes, events=truth, attention=outputs["att"],
                        timing=extractor.frame_timing, clip_scores=proba[i], title=f"held-out clip {test[i]}")

# %%
# How well do the frame scores find the events on all held-out clips? The frame-level
# AUC compares scores with the true activity (1 is perfect, 0.5 is chance).
from skattloc.events import events_to_frames
from skattloc.metrics import frame_auc

truth_frames = events_to_frames(events, None, classes, X.shape[1], timing=extractor.frame_timing,
                                n_clips=len(X))[test]
print("frame AUC per tag:", np.round(frame_auc(truth_frames, scores, average=None), 3))

# %%
# From frame scores to events
# ---------------------------
# :meth:`~skattloc.AttLocTagger.detect_events` lists the events with their times, as
# ``skattloc localize`` does: per tag a median filter, an event threshold with hysteresis,
# gap bridging and a clip gate, calibrated by ``fit`` on its validation clips from their
# clip tags. Here the tags are the columns of ``Y``, so the events carry their index.
found = tagger.detect_events(X[test], filenames=[f"clip_{j:05d}" for j in range(len(test))])
print("predicted:", [(round(on, 2), round(off, 2), classes[int(lab)]) for f, on, off, lab in found if f == f"clip_{i:05d}"])
print("true:     ", [(round(on, 2), round(off, 2), lab) for on, off, lab in truth])
