"""Shared fixtures: one synthetic data set and one small fitted tagger per test session."""
from pathlib import Path

import numpy as np
import pytest

from skattloc import AttLocTagger, LogMelExtractor, make_weak_events

# A small network so the default suite stays fast on 2 CPU cores; the paper-sized one is
# exercised by tests marked `slow`.
SMALL = dict(rnn_hidden=32, rnn_layers=1, dense_units=64, batch_size=32, learning_rate=3e-3)

DOMESTIC_MIX = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "domestic-mix"


def frame_truth(events, n_clips, n_frames, classes, extractor):
    """(n_clips, n_frames, n_classes) 0/1: frame centre inside a true event."""
    centres = extractor.frame_times(n_frames)
    out = np.zeros((n_clips, n_frames, len(classes)), dtype=np.uint8)
    col = {c: k for k, c in enumerate(classes)}
    for clip, on, off, label in events:
        out[clip, (centres >= on) & (centres < off), col[label]] = 1
    return out


@pytest.fixture(scope="session")
def synth():
    """2 s synthetic clips, 3 event types: 240 for training, 80 held out."""
    audio, Y, events = make_weak_events(n_clips=320, n_classes=3, duration=2.0, random_state=0)
    ext = LogMelExtractor()
    X = ext.fit_transform(audio)
    classes = ["tone", "chirp", "noise_burst"]
    truth = frame_truth(events, len(X), X.shape[1], classes, ext)
    return {
        "audio": audio, "X": X, "Y": Y, "events": events, "truth": truth, "extractor": ext,
        "train": slice(0, 240), "test": slice(240, 320), "classes": classes,
    }


@pytest.fixture(scope="session")
def fitted(synth):
    """A small att_loc tagger trained for 10 epochs on the 240 training clips."""
    tr = synth["train"]
    return AttLocTagger(**SMALL, max_epochs=10, random_state=0).fit(synth["X"][tr], synth["Y"][tr])
