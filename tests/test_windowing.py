"""Long recordings: overlapping windows, stitched frame outputs, bounded memory."""
from collections import Counter

import numpy as np
import pytest
from sklearn.base import clone

from skattloc import AttLocTagger
from skattloc.store import FeatureStore
from skattloc.windowing import (
    check_window_params,
    hop_frames,
    resolve_window,
    stitch_windows,
    taper,
    window_starts,
)


# --------------------------------------------------------------------------- helpers
@pytest.mark.parametrize("n", [1, 5, 8, 9, 17, 100, 1001])
@pytest.mark.parametrize("window,hop", [(8, 4), (8, 8), (8, 1), (7, 3)])
def test_windows_cover_every_frame_and_stay_inside(n, window, hop):
    s = window_starts(n, window, hop)
    assert s[0] == 0 and np.all(np.diff(s) > 0) and np.all(np.diff(s) <= hop)
    if n <= window:
        assert s.tolist() == [0]
    else:
        assert s[-1] == n - window  # the last window ends at the end: no padding anywhere
    covered = np.zeros(n, dtype=int)
    for k in s:
        covered[k : min(n, k + window)] += 1
    assert covered.min() >= 1


def test_hann_taper_is_positive_and_cola_at_half_overlap():
    w = taper(100)
    assert w.min() > 0 and w.max() <= 1
    total = np.zeros(1000)
    for k in range(0, 901, 50):
        total[k : k + 100] += w
    np.testing.assert_allclose(total[100:900], 1.0, rtol=1e-12)  # constant in the interior
    assert hop_frames(249, 0.5) == 124 and hop_frames(249, 0.0) == 249 and hop_frames(3, 0.99) == 1


@pytest.mark.parametrize("n,window,overlap,batch", [(50, 8, 0.5, 3), (51, 8, 0.0, 2), (23, 7, 0.75, 100), (8, 8, 0.5, 1)])
def test_stitching_a_per_frame_function_gives_it_back(n, window, overlap, batch):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    calls = []

    def run(xb):
        calls.append(xb.shape)
        return xb.sum(axis=1), {"f": np.tanh(xb), "g": xb[..., 0]}

    hop = hop_frames(window, overlap)
    clip, frames = stitch_windows(run, lambda a, b: x[a:b], n, window, hop, batch)
    np.testing.assert_allclose(frames["f"], np.tanh(x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(frames["g"], x[:, 0], rtol=1e-6, atol=1e-6)
    starts = window_starts(n, window, hop)
    np.testing.assert_allclose(clip, np.max([x[k : k + window].sum(0) for k in starts], axis=0), rtol=1e-6)
    assert all(b <= batch and w == window for b, w, _ in calls)
    assert sum(b for b, _, _ in calls) == len(starts)


@pytest.mark.parametrize("frames,overlap", [(0, 0.5), (-3, 0.5), (2.5, 0.5), (True, 0.5), ("full", 0.5), (10, 1.0), (10, -0.1), (10, float("nan"))])
def test_bad_window_params_are_refused(frames, overlap):
    with pytest.raises(ValueError, match="window_frames|window_overlap"):
        check_window_params(frames, overlap)


def test_resolve_window():
    assert resolve_window("auto", 0.5, 124) == (124, 62)
    assert resolve_window("auto", 0.5, None) == (None, 0)
    assert resolve_window(None, 0.5, 124) == (None, 0)
    assert resolve_window(40, 0.25, 124) == (40, 30)


# --------------------------------------------------------------------------- estimator
def test_training_clip_length_is_learned_and_params_checked(synth, fitted):
    assert fitted.n_frames_train_ == synth["X"].shape[1] == 124
    bad = clone(fitted).set_params(window_frames=0)
    with pytest.raises(ValueError, match="window_frames"):
        bad.fit(synth["X"][:8], synth["Y"][:8])
    bad.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    with pytest.raises(ValueError, match="window_frames"):
        bad.predict_proba(synth["X"][:2])


def _with_params(fitted, **params):
    est = clone(fitted).set_params(**params)
    est.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    return est


def test_short_clips_are_unaffected_by_windowing(synth, fitted):
    X = synth["X"][240:250]
    clips = [X[0], X[1][:60], X[2][:124], X[3][:1]]  # at most the training length
    off = _with_params(fitted, window_frames=None)
    np.testing.assert_array_equal(fitted.predict_proba(X), off.predict_proba(X))
    np.testing.assert_array_equal(fitted.localize(X), off.localize(X))
    for a, b in zip(fitted.localize(clips), off.localize(clips)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(fitted.frame_outputs(clips), off.frame_outputs(clips)):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    import torch

    with torch.inference_mode():
        direct = fitted.model_(torch.from_numpy(X)).clip.numpy()
    np.testing.assert_allclose(fitted.predict_proba(X), direct, rtol=1e-5, atol=1e-6)


def test_long_recording_lines_up_frame_for_frame_with_its_short_clips(synth, fitted):
    """Without overlap, window k of a recording made of short clips is clip k exactly."""
    X = synth["X"][240:246]
    long = np.concatenate(list(X))  # 6 * 124 frames
    est = _with_params(fitted, window_overlap=0.0)
    loc = est.localize([long])[0]
    assert loc.shape == (6 * 124, 3)
    np.testing.assert_allclose(loc, np.concatenate(list(fitted.localize(X))), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(est.predict_proba([long])[0], fitted.predict_proba(X).max(axis=0), rtol=1e-5, atol=1e-6)
    # With the default half overlap, a frame's output is a cross-fade of the two windows
    # that hold it, so it stays close to the short clip's where both windows agree.
    assert np.abs(fitted.localize([long])[0] - loc).mean() < 0.05


def test_padding_never_leaks_into_long_recordings(synth, fitted):
    X = synth["X"]
    long1 = np.concatenate([X[250], X[251], X[252][:37]])  # 285 frames
    long2 = np.concatenate([X[253], X[254]])  # 248 frames
    clips = [X[255][:50], long1, X[256], long2, X[257][:7]]
    together = fitted.localize(clips)
    proba = fitted.predict_proba(clips)
    assert [c.shape[0] for c in together] == [50, 285, 124, 248, 7]
    for i, c in enumerate(clips):
        alone = _with_params(fitted, batch_size=1)
        np.testing.assert_allclose(alone.localize([c])[0], together[i], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(alone.predict_proba([c])[0], proba[i], rtol=1e-5, atol=1e-6)


def test_event_deep_in_ten_minutes_of_noise_is_found_at_its_time(synth, fitted):
    """A tone planted at 7:31 in 10 min of background is localized there."""
    ext = synth["extractor"]
    W = fitted.n_frames_train_
    counts = Counter(e[0] for e in synth["events"])
    clip_id, onset, offset, _ = next(
        e for e in synth["events"] if e[0] >= 240 and counts[e[0]] == 1 and e[3] == "tone" and e[2] - e[1] > 0.6
    )
    event_clip = synth["audio"][clip_id]
    # Put the clip at frame p = k * W, so that it starts a window when overlap is 0.
    hop_s = ext.hop_length / ext.sr
    k = int(round((451.0 - onset) / hop_s / W))
    p = k * W
    start_sample = p * ext.hop_length
    rng = np.random.default_rng(1)
    audio = (0.01 * rng.standard_normal(600 * ext.sr)).astype(np.float32)
    audio[start_sample : start_sample + len(event_clip)] = event_clip
    t_on = start_sample / ext.sr + onset
    t_off = start_sample / ext.sr + offset
    assert 450 < t_on < 452

    X = ext.transform(audio[None])[0]  # (37499, 40)
    short = ext.transform(event_clip[None])[0]
    np.testing.assert_allclose(X[p : p + len(short)], short, rtol=1e-5, atol=1e-5)  # the same frames

    tone = list(fitted.classes_).index(0)  # class 0 is "tone"
    out = fitted.frame_outputs([X])[0]  # one pass: clip and frame outputs
    loc = out["weighted"]  # what localize returns (localization="paper")
    assert loc.shape == (len(X), 3)
    times = ext.frame_times(len(X))
    peak = times[np.argmax(loc[:, tone])]
    assert t_on - 0.1 <= peak <= t_off + 0.1, f"tone peak at {peak:.2f} s, event at {t_on:.2f}-{t_off:.2f} s"
    inside = (times >= t_on) & (times < t_off)
    far = np.abs(times - (t_on + t_off) / 2) > 5
    assert loc[inside, tone].mean() > 5 * loc[far, tone].mean()
    assert out["clip"][tone] > 0.5
    # Frame indices map to the same times as in the short clip: without overlap the
    # window holding the event is the short clip itself (here in a 5-window excerpt).
    aligned = _with_params(fitted, window_overlap=0.0).localize([X[p - 2 * W : p + 3 * W]])[0]
    np.testing.assert_allclose(aligned[2 * W : 3 * W], fitted.localize(short[None])[0], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("n", [20_000, pytest.param(225_000, marks=pytest.mark.slow, id="one_hour")])
def test_a_long_recording_runs_a_bounded_batch_of_windows_at_a_time(synth, tmp_path, n):
    """Up to 225,000 frames (1 h at hop 256): the network never sees more than one batch of windows."""
    tiny = dict(n_filters=4, rnn_hidden=4, rnn_layers=1, dense_units=4, batch_size=64, max_epochs=1, random_state=0)
    fitted = AttLocTagger(**tiny).fit(synth["X"][:16], synth["Y"][:16])
    X = np.random.default_rng(0).normal(-5.0, 2.0, size=(n, 40)).astype(np.float32)
    est = fitted
    seen = []
    handle = est.model_.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape)))
    try:
        loc = est.localize([X])[0]
        proba = est.predict_proba([X])
    finally:
        handle.remove()
    W = fitted.n_frames_train_
    assert loc.shape == (n, 3) and loc.dtype == np.float32 and np.isfinite(loc).all()
    assert proba.shape == (1, 3)
    assert max(b * t for b, t, _ in seen) <= 64 * W
    assert all(t == W for _, t, _ in seen)
    # The same from a FeatureStore, read one batch span at a time.
    store = FeatureStore.create(tmp_path / "hour", [X])
    spans = []
    read = store._read_base

    def spy(j, a, b):
        spans.append(b - a)
        return read(j, a, b)

    store._read_base = spy
    np.testing.assert_allclose(est.predict_proba(store), proba, rtol=1e-6)
    assert max(spans) <= 63 * (W // 2) + W
