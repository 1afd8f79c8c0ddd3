"""Every label a user has (issue 18): clip tags, event times on some clips, unlabeled clips."""
import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from skattloc import AttLocTagger, LogMelExtractor, make_weak_events
from skattloc.data import MixedBatchSampler, pad_collate, train_loader
from skattloc.params import legacy_values
from skattloc.supervision import TAGGED, TIMED, UNLABELED, parse_supervision, split_by_kind
from skattloc.timing import FrameTiming

FIXTURES = Path(__file__).parent / "fixtures"
TINY = dict(rnn_hidden=8, rnn_layers=1, dense_units=8, n_filters=8, conv_blocks=2, max_epochs=2, random_state=0)
NAMES = ["tone", "chirp"]


def _encode(y, n, classes):
    from skattloc.tags import encode_tags

    Y, classes = encode_tags(y, classes, n_clips=n)
    return Y.astype(np.float32), classes


@pytest.fixture(scope="module")
def data():
    audio, Y, events = make_weak_events(n_clips=60, n_classes=2, duration=1.0, random_state=0)
    X = LogMelExtractor(hop_length=512).fit_transform(audio)  # 32 ms frames
    tags = [tuple(NAMES[k] for k in np.flatnonzero(r)) for r in Y]
    return X, tags, events


# ---------------------------------------------------------------------------- targets
def test_event_times_become_frame_targets_at_the_features_hop():
    timing = FrameTiming(0.032, 0.0)
    sup = parse_supervision([("tone",), ("chirp",), None], 3, [31, 31, 31], _encode,
                            events=[(0, 0.32, 0.64, "tone")], timing=timing)
    assert sup.kinds.tolist() == [TIMED, TAGGED, UNLABELED]
    f = sup.frames[0]
    assert f.shape == (31, 2) and sup.frames[1] is None and sup.frames[2] is None
    tone = list(sup.classes).index("tone")
    # frame i is centred at (i + 0.5) * 32 ms: frames 10 .. 19 lie in [0.32, 0.64)
    assert np.flatnonzero(f[:, tone]).tolist() == list(range(10, 20)) and not f[:, 1 - tone].any()
    assert np.isnan(sup.Y[2]).all() and sup.Y[0].tolist() == [0.0, 1.0] and sup.counts == {"tagged": 1, "timed": 1, "unlabeled": 1}
    # a 10 ms hop puts the same event on frames 31 .. 62 (centres 7.5 ms + (i + 0.5) 10 ms)
    sup10 = parse_supervision([("tone",)], 1, [98], _encode, events=[(0, 0.32, 0.64, "tone")], timing=FrameTiming(0.01, 0.0075))
    assert np.flatnonzero(sup10.frames[0][:, 0]).tolist() == list(range(31, 63))


def test_unlabeled_rows_in_a_matrix_are_minus_one_rows():
    Y = np.array([[1, 0], [-1, -1], [0, 1]])
    sup = parse_supervision(Y, 3, [5, 5, 5], _encode)
    assert sup.kinds.tolist() == [TAGGED, UNLABELED, TAGGED] and np.isnan(sup.Y[1]).all()
    with pytest.raises(ValueError, match="Unknown label type: multiclass.*a row of -1 in every column as an unlabeled clip"):
        parse_supervision(np.array([[1, -1], [0, 1]]), 2, [5, 5], _encode)


@pytest.mark.parametrize("events, match", [
    ([(7, 0.1, 0.2, "tone")], "names clip index 7, but X has 2 clips"),
    ([("b.wav", 0.1, 0.2, "tone")], r"name clips that are not in X, e.g. \['b.wav'\]"),
    ([(0, 0.1, 0.2, "bird")], "has a tag that is not one of the classes"),
    ([(0, 0.5, 3.0, "tone")], "is outside the clip"),
    ([(0, 0.5, 0.2, "tone")], "ends before it starts"),
    ([(0, 0.1, 0.2, "chirp")], r"clip 0: its y row says tags \['tone'\] but its events have \['chirp'\]"),
])
def test_bad_events_are_refused(events, match):
    with pytest.raises(ValueError, match=match):
        parse_supervision([("tone",), ("chirp",)], 2, [31, 31], _encode, events=events, timing=FrameTiming(0.032),
                          filenames=None if events[0][0] != "b.wav" else ["a.wav", "c.wav"])


def test_event_times_need_a_frame_timing_and_some_label():
    with pytest.raises(ValueError, match="events need the frame timing"):
        parse_supervision([("tone",)], 1, [31], _encode, events=[(0, 0.1, 0.2, "tone")])
    with pytest.raises(ValueError, match="every clip is unlabeled"):
        parse_supervision([None, None], 2, [31, 31], _encode)


def test_the_validation_split_keeps_the_kinds_apart():
    kinds = np.array([TAGGED] * 50 + [TIMED] * 20 + [UNLABELED] * 30)
    train, val = split_by_kind(kinds, 0.1, np.random.RandomState(0))
    assert np.sum(kinds[val] == TAGGED) == 5 and np.sum(kinds[val] == TIMED) == 2
    assert not (kinds[val] == UNLABELED).any() and np.array_equal(np.sort(np.concatenate([train, val])), np.arange(100))


# ---------------------------------------------------------------------------- batches
def test_padded_frame_targets_are_nan_beyond_each_clip():
    items = [(torch.zeros(5, 3), torch.tensor([1.0, 0.0]), torch.ones(5, 2)),
             (torch.zeros(3, 3), torch.tensor([float("nan")] * 2), torch.full((3, 2), float("nan")))]
    x, lengths, y, f = pad_collate(items)
    assert x.shape == (2, 5, 3) and lengths.tolist() == [5, 3] and f.shape == (2, 5, 2)
    assert (f[0] == 1).all() and torch.isnan(f[1]).all() and torch.isnan(y[1]).all()


def test_mixed_batches_hold_the_unlabeled_share_and_every_labelled_clip_once():
    gen = torch.Generator().manual_seed(0)
    sampler = MixedBatchSampler(np.arange(10), np.arange(10, 40), batch_size=4, unlabeled_ratio=0.5, generator=gen)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 5
    assert all(sum(i >= 10 for i in b) == 2 for b in batches)
    assert sorted(i for b in batches for i in b if i < 10) == list(range(10))
    again = list(MixedBatchSampler(np.arange(10), np.arange(10, 40), 4, 0.5, torch.Generator().manual_seed(0)))
    assert again == batches


def test_a_loader_with_unlabeled_clips_and_frame_targets_gives_batches_of_four():
    X = np.zeros((12, 6, 3), dtype=np.float32)
    Y = np.zeros((12, 2), dtype=np.float32)
    Y[8:] = np.nan
    frames = [np.ones((6, 2), np.float32) if i < 2 else None for i in range(12)]
    dl = train_loader(X, Y, 4, seed=0, frames=frames, unlabeled_ratio=0.5)
    batches = list(dl)
    assert len(batches) == 4 and all(len(b) == 4 and b[0].shape == (4, 6, 3) for b in batches)
    assert all(int(torch.isnan(b[2]).any(dim=1).sum()) == 2 for b in batches)


# ---------------------------------------------------------------------------- fit
def test_without_unlabeled_clips_or_events_fit_is_unchanged():
    """Without unlabeled clips or event times the every-label parameters (and the
    augmentations that are off by default) change nothing, bit for bit; and the fit is
    still the release's (the fixture of tests/fixtures/make_fixtures.py refitted today).

    Against the release the weights must agree to float32 rounding (1e-7): a dependency's
    new version can reorder a sum (the fixture was made with the Lightning of its day), but
    any change of what is trained moves them by orders of magnitude more."""
    info = json.loads((FIXTURES / "release_without_extractor.json").read_text())
    rng = np.random.default_rng(1)
    X2 = rng.normal(size=(10, 24, 16)).astype(np.float32)
    Y2 = (rng.random((10, 3)) < 0.5).astype(int)
    Y2[0], Y2[1] = 1, 0
    assert np.array_equal(X2, np.load(FIXTURES / "release_without_extractor.npz")["X"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the fixture was made
    try:
        # the release's parameters; those added since take their legacy values, as a loaded file does
        params = {**legacy_values(), **{k: v for k, v in info["params"].items() if k in AttLocTagger().get_params()}}
        today = AttLocTagger(**params).fit(X2, Y2)
        other = AttLocTagger(**params, consistency_weight=5.0, frame_loss_weight=3.0, unlabeled_ratio=0.3).fit(X2, Y2)
    finally:
        torch.set_num_threads(threads)
    release = AttLocTagger.load(FIXTURES / "release_without_extractor.skattloc")
    for (name, a), (_, b), (_, c) in zip(today.model_.state_dict().items(), other.model_.state_dict().items(),
                                         release.model_.state_dict().items()):
        assert torch.equal(a, b), name
        torch.testing.assert_close(a, c, rtol=0, atol=1e-7, msg=name)


def test_fit_learns_from_every_kind_and_tunes_events_on_timed_validation_clips(data):
    X, tags, events = data
    y = [t if i < 40 else None for i, t in enumerate(tags)]
    timed = [e for e in events if e[0] < 20]
    tagger = AttLocTagger(**TINY, validation_fraction=0.2).fit(X, y, events=timed)
    n_timed = len({e[0] for e in timed})
    assert tagger.label_counts_ == {"tagged": 40 - n_timed, "timed": n_timed, "unlabeled": 20}
    assert tagger.event_settings_["source"] == "strong"
    assert set(tagger.classes_) == set(NAMES) and np.isfinite(tagger.history_[-1]["train_loss"])
    names = [f"c{i}.wav" for i in range(len(X))]
    by_name = AttLocTagger(**TINY, validation_fraction=0.2).fit(
        X, y, events=[(names[i], on, off, tag) for i, on, off, tag in timed], filenames=names)
    assert np.array_equal(by_name.predict_proba(X), tagger.predict_proba(X))


def test_mean_teacher_trains_a_teacher_only_with_unlabeled_clips(data, monkeypatch):
    from skattloc import module as module_lib

    X, tags, _ = data
    seen = []
    original = module_lib.AttLocModule.__init__

    @functools.wraps(original)  # keeps the signature, which fit reads
    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("mean_teacher"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(module_lib.AttLocModule, "__init__", spy)
    AttLocTagger(**TINY).fit(X, tags)
    AttLocTagger(**TINY).fit(X, [t if i < 30 else None for i, t in enumerate(tags)])
    AttLocTagger(**TINY, consistency_weight=0).fit(X, [t if i < 30 else None for i, t in enumerate(tags)])
    assert seen == [False, True, False]


def test_the_frame_loss_moves_the_localization_towards_the_event_times(data):
    X, tags, events = data
    plain = dict(TINY, max_epochs=15, learning_rate=1e-2, batch_size=20, spec_augment=0, mixup_alpha=0.0, ema_decay=0.0)
    base = AttLocTagger(**plain).fit(X, tags)
    timed = AttLocTagger(**plain).fit(X, tags, events=events)
    from skattloc.events import events_to_frames
    from skattloc.metrics import frame_auc

    truth = events_to_frames(events, None, list(timed.classes_), X.shape[1], timing=X.frame_timing, n_clips=len(X))
    assert frame_auc(truth, timed.localize(X)) > frame_auc(truth, base.localize(X))


def test_resume_with_unlabeled_clips_and_events_equals_an_uninterrupted_fit(data, tmp_path):
    X, tags, events = data
    y = [t if i < 40 else None for i, t in enumerate(tags)]
    timed = [e for e in events if e[0] < 20]
    params = dict(TINY, max_epochs=3, validation_fraction=0.2)
    reference = AttLocTagger(**params).fit(X, y, events=timed)
    AttLocTagger(**{**params, "max_epochs": 1}, checkpoint_dir=tmp_path).fit(X, y, events=timed)
    resumed = AttLocTagger(**params, checkpoint_dir=tmp_path, resume=True).fit(X, y, events=timed)
    for (name, a), (_, b) in zip(reference.model_.state_dict().items(), resumed.model_.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), name
    with pytest.raises(ValueError, match="the event times"):
        AttLocTagger(**params, checkpoint_dir=tmp_path, resume=True).fit(X, y, events=timed[:-3])
