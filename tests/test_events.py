"""Tests for skattloc.events (frame matrices <-> event lists, TSV, thresholds)."""
import numpy as np
import pytest

from skattloc.events import (
    events_to_frames,
    frames_to_events,
    read_events_tsv,
    tune_thresholds,
    write_events_tsv,
)
from skattloc.timing import FrameTiming

HOP, OFF = 0.016, 0.008
T = FrameTiming(HOP, OFF)  # the default extractor's timing


def _t(i):
    """Start time of frame i under the default convention."""
    return OFF + i * HOP


def _scores(n_frames, n_classes, active):
    """(n_frames, n_classes) scores: 0.9 on listed (class, start, stop) runs, else 0.1."""
    s = np.full((n_frames, n_classes), 0.1)
    for k, a, b in active:
        s[a:b, k] = 0.9
    return s


def test_hand_made_scores_give_exact_events():
    s = _scores(10, 2, [(0, 2, 5), (1, 0, 2), (1, 7, 10)])
    ev = frames_to_events(s[None], ["speech", "dog"], timing=T)
    assert [(e[0], e[3]) for e in ev] == [("clip_00000", "dog"), ("clip_00000", "speech"), ("clip_00000", "dog")]
    expected = [(_t(0), _t(2)), (_t(2), _t(5)), (_t(7), _t(10))]
    for e, (on, off) in zip(ev, expected):
        assert e[1] == pytest.approx(on) and e[2] == pytest.approx(off)
    assert ev[0][1] == pytest.approx(0.008) and ev[1][2] == pytest.approx(0.088)
    assert all(isinstance(e[1], float) and isinstance(e[2], float) for e in ev)


def test_input_forms_and_sorting():
    a = _scores(6, 1, [(0, 1, 3)])
    b = _scores(9, 1, [(0, 0, 2), (0, 5, 9)])
    ev_list = frames_to_events([b, a], ["x"], filenames=["b.wav", "a.wav"], timing=T)
    assert [e[0] for e in ev_list] == ["a.wav", "b.wav", "b.wav"]  # sorted by filename, onset
    assert frames_to_events(a, ["x"], timing=T) == frames_to_events(a[None], ["x"], timing=T)  # single 2-D array = one clip
    ev = frames_to_events(np.stack([a, a]), ["x"], timing=T)
    assert [e[0] for e in ev] == ["clip_00000", "clip_00001"]


def test_custom_hop_and_offset():
    s = _scores(4, 1, [(0, 1, 3)])
    ev = frames_to_events(s, ["x"], timing=(0.5, 0.25))
    assert ev == [("clip_00000", pytest.approx(0.75), pytest.approx(1.75), "x")]


def test_median_filter_removes_single_frame_spike():
    s = _scores(20, 1, [(0, 5, 6), (0, 10, 15)])  # 1-frame spike and a 5-frame event
    ev = frames_to_events(s, ["x"], median_filter=3, timing=T)
    assert len(ev) == 1
    assert ev[0][1] == pytest.approx(_t(10)) and ev[0][2] == pytest.approx(_t(15))
    assert len(frames_to_events(s, ["x"], timing=T)) == 2
    assert len(frames_to_events(s, ["x"], median_filter=1, timing=T)) == 2


def test_median_filter_fills_single_frame_hole():
    s = _scores(20, 1, [(0, 3, 8), (0, 9, 14)])
    ev = frames_to_events(s, ["x"], median_filter=3, timing=T)
    assert len(ev) == 1 and ev[0][2] == pytest.approx(_t(14))


@pytest.mark.parametrize("bad", [2, 0, -3, 3.0, True])
def test_median_filter_validation(bad):
    with pytest.raises(ValueError, match="median_filter"):
        frames_to_events(_scores(5, 1, []), ["x"], median_filter=bad, timing=T)


def test_min_gap_merges():
    s = _scores(20, 1, [(0, 2, 5), (0, 6, 9), (0, 12, 15)])  # gaps of 1 and 3 frames
    assert len(frames_to_events(s, ["x"], timing=T)) == 3
    ev = frames_to_events(s, ["x"], min_gap=0.02, timing=T)  # merges the 1-frame (0.016 s) gap
    assert len(ev) == 2
    assert ev[0][1] == pytest.approx(_t(2)) and ev[0][2] == pytest.approx(_t(9))
    assert len(frames_to_events(s, ["x"], min_gap=0.01, timing=T)) == 3
    assert len(frames_to_events(s, ["x"], min_gap=0.06, timing=T)) == 1  # 3 frames = 0.048 s < 0.06
    # a gap exactly equal to min_gap is not "shorter than" it
    assert len(frames_to_events(s, ["x"], min_gap=0.048, timing=T)) == 2


def test_min_duration_drops():
    s = _scores(20, 1, [(0, 2, 3), (0, 6, 9)])  # 1 frame (0.016 s) and 3 frames (0.048 s)
    assert len(frames_to_events(s, ["x"], timing=T)) == 2
    ev = frames_to_events(s, ["x"], min_duration=0.02, timing=T)
    assert len(ev) == 1 and ev[0][1] == pytest.approx(_t(6))
    assert len(frames_to_events(s, ["x"], min_duration=0.048, timing=T)) == 1  # equal length is kept
    assert len(frames_to_events(s, ["x"], min_duration=0.05, timing=T)) == 0


def test_merge_happens_before_min_duration():
    s = _scores(20, 1, [(0, 2, 3), (0, 4, 5)])  # two 1-frame events, 1-frame gap
    assert len(frames_to_events(s, ["x"], min_duration=0.03, timing=T)) == 0
    ev = frames_to_events(s, ["x"], min_duration=0.03, min_gap=0.02, timing=T)
    assert len(ev) == 1 and ev[0][2] - ev[0][1] == pytest.approx(3 * HOP)


def test_per_class_thresholds_sequence_and_dict():
    s = np.full((1, 6, 2), 0.6)
    assert {e[3] for e in frames_to_events(s, ["a", "b"], timing=T)} == {"a", "b"}
    ev = frames_to_events(s, ["a", "b"], threshold=[0.5, 0.7], timing=T)
    assert [e[3] for e in ev] == ["a"]
    ev = frames_to_events(s, ["a", "b"], threshold={"a": 0.7, "b": 0.5}, timing=T)
    assert [e[3] for e in ev] == ["b"]
    assert frames_to_events(s, ["a", "b"], threshold=0.6, timing=T) != []  # >= threshold is active
    with pytest.raises(ValueError, match="2 per-class"):
        frames_to_events(s, ["a", "b"], threshold=[0.5, 0.5, 0.5], timing=T)
    with pytest.raises(ValueError, match="no entry"):
        frames_to_events(s, ["a", "b"], threshold={"a": 0.5}, timing=T)


def test_clip_duration_clips_times():
    s = _scores(10, 1, [(0, 5, 10)])  # would end at 0.168 s
    ev = frames_to_events(s, ["x"], clip_duration=0.15, timing=T)
    assert ev[0][2] == pytest.approx(0.15)
    ev = frames_to_events([s, s], ["x"], clip_duration=[0.2, 0.1], timing=T)
    assert ev[0][2] == pytest.approx(0.168) and ev[1][2] == pytest.approx(0.1)
    # an event entirely beyond the clip disappears
    assert frames_to_events(s, ["x"], clip_duration=0.05, timing=T) == []


def test_frames_to_events_input_errors():
    s = _scores(5, 2, [])
    with pytest.raises(ValueError, match="classes has 1"):
        frames_to_events(s, ["a"], timing=T)
    bad = s.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        frames_to_events(bad, ["a", "b"], timing=T)
    with pytest.raises(ValueError, match="filenames has 2"):
        frames_to_events(s, ["a", "b"], filenames=["x", "y"], timing=T)
    with pytest.raises(ValueError, match="Empty"):
        frames_to_events([], ["a"], timing=T)
    with pytest.raises(ValueError, match="hop_s"):
        frames_to_events(s, ["a", "b"], timing=(0, OFF))


def test_events_to_frames_inverts_frames_to_events():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = (rng.random((3, 40, 4)) < 0.4).astype(np.uint8)
        ev = frames_to_events(x, list("abcd"), filenames=["f0", "f1", "f2"], timing=T)
        back = events_to_frames(ev, ["f0", "f1", "f2"], list("abcd"), n_frames=40, timing=T)
        assert back.dtype == np.uint8 and back.shape == x.shape
        np.testing.assert_array_equal(back, x)


def test_events_to_frames_center_rule_and_integer_indices():
    # frame centers: 0.25, 0.75, 1.25, 1.75 (hop 0.5, offset 0)
    ev = [(0, 0.25, 1.25, "a"), (1, 1.0, 1.3, "b")]
    out = events_to_frames(ev, None, ["a", "b"], n_frames=4, timing=(0.5, 0.0))
    assert out.shape == (2, 4, 2)
    np.testing.assert_array_equal(out[0, :, 0], [1, 1, 0, 0])  # [0.25, 1.25) excludes 1.25
    np.testing.assert_array_equal(out[1, :, 1], [0, 0, 1, 0])
    out = events_to_frames(ev, None, ["a", "b"], n_frames=4, timing=(0.5, 0.0), n_clips=5)
    assert out.shape == (5, 4, 2)


def test_events_to_frames_errors():
    with pytest.raises(ValueError, match="not in filenames"):
        events_to_frames([("zz", 0.0, 1.0, "a")], ["f"], ["a"], n_frames=10, timing=T)
    with pytest.raises(ValueError, match="not in classes"):
        events_to_frames([("f", 0.0, 1.0, "q")], ["f"], ["a"], n_frames=10, timing=T)
    with pytest.raises(ValueError, match="integer index"):
        events_to_frames([("f", 0.0, 1.0, "a")], None, ["a"], n_frames=10, timing=T)
    with pytest.raises(ValueError, match="onset <= offset"):
        events_to_frames([("f", 2.0, 1.0, "a")], ["f"], ["a"], n_frames=10, timing=T)


def test_tsv_round_trip(tmp_path):
    ev = [
        ("a.wav", 0.008, 0.088, "speech"),
        ("a.wav", 1.5, 2.25, "dog"),
        ("b 2.wav", 0.0, 10.0, "Alarm_bell_ringing"),
    ]
    path = tmp_path / "events.tsv"
    write_events_tsv(ev, path)
    lines = path.read_text().splitlines()
    assert lines[0] == "filename\tonset\toffset\tevent_label"
    assert lines[1] == "a.wav\t0.008\t0.088\tspeech"
    assert read_events_tsv(path) == ev
    # more decimals are rounded to 3
    s = _scores(10, 2, [(0, 2, 5), (1, 3, 4)])
    ev2 = frames_to_events(s, ["x", "y"], timing=(0.0123, 0.0031))
    write_events_tsv(ev2, str(path))
    got = read_events_tsv(str(path))
    assert [(g[0], g[3]) for g in got] == [(e[0], e[3]) for e in ev2]
    for g, e in zip(got, ev2):
        assert g[1] == pytest.approx(e[1], abs=5e-4) and g[2] == pytest.approx(e[2], abs=5e-4)


def test_read_tsv_other_column_order_and_empty_rows(tmp_path):
    path = tmp_path / "ref.tsv"
    path.write_text("filename\tevent_label\tonset\toffset\nx.wav\tdog\t1\t2\ny.wav\t\t\t\n\n")
    assert read_events_tsv(path) == [("x.wav", 1.0, 2.0, "dog")]
    bad = tmp_path / "bad.tsv"
    bad.write_text("file\tstart\tend\tlabel\n")
    with pytest.raises(ValueError, match="lacks column"):
        read_events_tsv(bad)


def test_tune_thresholds_between_separated_groups():
    rng = np.random.default_rng(0)
    y = (rng.random((5, 50, 2)) < 0.3).astype(int)
    s = np.where(y == 1, rng.uniform(0.6, 0.9, y.shape), rng.uniform(0.0, 0.3, y.shape))
    thr = tune_thresholds(y, s)
    assert thr.shape == (2,)
    for k in range(2):
        lo, hi = s[..., k][y[..., k] == 0].max(), s[..., k][y[..., k] == 1].min()
        assert lo < thr[k] < hi
        assert thr[k] == pytest.approx((lo + hi) / 2)
    d = tune_thresholds(y, s, classes=["a", "b"], grid=np.linspace(0, 1, 21))
    assert set(d) == {"a", "b"}
    for k, c in enumerate(["a", "b"]):
        lo, hi = s[..., k][y[..., k] == 0].max(), s[..., k][y[..., k] == 1].min()
        assert lo < d[c] < hi
    # the tuned thresholds reproduce the truth through frames_to_events
    ev = frames_to_events(s, ["a", "b"], threshold=d, timing=T)
    np.testing.assert_array_equal(events_to_frames(ev, [f"clip_{i:05d}" for i in range(5)], ["a", "b"], 50, timing=T), y)


def test_tune_thresholds_overlapping_groups_is_f1_optimal():
    rng = np.random.default_rng(1)
    y = (rng.random((1, 300, 1)) < 0.4).astype(int)
    s = rng.normal(size=y.shape) + 1.0 * y
    thr = tune_thresholds(y, s)[0]

    def f1(t):
        p = s.ravel() >= t
        tp = np.sum(p & (y.ravel() == 1))
        return 2 * tp / (p.sum() + y.sum())

    best = max(f1(t) for t in np.unique(s))
    assert f1(thr) == pytest.approx(best)


def test_tune_thresholds_no_positives_and_errors():
    y = np.zeros((2, 10, 1), dtype=int)
    s = np.random.default_rng(0).random(y.shape)
    with pytest.warns(UserWarning, match="no active frame"):
        assert tune_thresholds(y, s, default=0.4)[0] == 0.4
    with pytest.raises(ValueError, match="metric"):
        tune_thresholds(y, s, metric="accuracy")
    with pytest.raises(ValueError, match="shapes differ"):
        tune_thresholds(y, s[:, :5])
    with pytest.raises(ValueError, match="binary"):
        tune_thresholds(y + 2, s)
