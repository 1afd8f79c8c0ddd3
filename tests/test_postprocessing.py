"""EventPostprocessor: per-class decoding, hysteresis, weak calibration and strong tuning."""
import numpy as np
import pytest

from skattloc.metrics import event_based_metrics
from skattloc.postprocessing import EventPostprocessor
from skattloc.timing import FrameTiming

T = FrameTiming(0.016, 0.008)  # the default extractor's timing


def test_hysteresis_extends_events_to_the_low_threshold_both_ways():
    s = np.array([0.1, 0.35, 0.45, 0.9, 0.6, 0.45, 0.2, 0.5, 0.1])[:, None]
    single = EventPostprocessor(["a"], threshold=0.8).decode(s, timing=(1.0, 0.0), filenames=["f"])
    assert single == [("f", 3.0, 4.0, "a")]
    hyst = EventPostprocessor(["a"], threshold=0.8, threshold_low=0.4).decode(s, timing=(1.0, 0.0), filenames=["f"])
    # frames 2..5 are >= 0.4 around the 0.9 peak; frame 7 (0.5) never reaches 0.8 -> no event
    assert hyst == [("f", 2.0, 6.0, "a")]


def test_settings_are_per_class():
    s = np.zeros((10, 2))
    s[2:4, 0] = 0.6
    s[2:4, 1] = 0.6
    s[5, 1] = 0.6
    pp = EventPostprocessor(["a", "b"], threshold=[0.5, 0.7])
    assert pp.decode(s, timing=(1.0, 0.0), filenames=["f"]) == [("f", 2.0, 4.0, "a")]
    pp = EventPostprocessor(["a", "b"], threshold=0.5, min_gap={"a": 0.0, "b": 2.0})
    ev = pp.decode(s, timing=(1.0, 0.0), filenames=["f"])
    assert ("f", 2.0, 6.0, "b") in ev and ("f", 2.0, 4.0, "a") in ev and len(ev) == 2
    pp = EventPostprocessor(["a", "b"], threshold=0.5, min_duration=[2.0, 1.5])
    assert pp.decode(s, timing=(1.0, 0.0), filenames=["f"]) == [("f", 2.0, 4.0, "a"), ("f", 2.0, 4.0, "b")]


def test_median_filter_per_class_removes_short_blips_only_where_set():
    s = np.zeros((20, 2))
    s[5, :] = 1.0  # a one-frame blip in both classes
    s[10:16, :] = 1.0  # a real event
    pp = EventPostprocessor(["a", "b"], threshold=0.5, median_filter=[0.0, 0.5])  # 5 frames at hop 0.1 s
    ev = pp.decode(s, timing=(0.1, 0.0), filenames=["f"])
    a = [e for e in ev if e[3] == "a"]
    b = [e for e in ev if e[3] == "b"]
    assert len(a) == 2 and len(b) == 1
    assert b[0][1] == pytest.approx(1.0) and b[0][2] == pytest.approx(1.6)


def test_clip_gating_needs_clip_scores_and_drops_ungated_classes():
    s = np.full((2, 5, 1), 0.9)
    pp = EventPostprocessor(["a"], threshold=0.5, clip_threshold=0.5)
    with pytest.raises(ValueError, match="clip_scores"):
        pp.decode(s, timing=T)
    ev = pp.decode(s, clip_scores=np.array([[0.6], [0.4]]), filenames=["x", "y"], timing=(1.0, 0.0))
    assert ev == [("x", 0.0, 5.0, "a")]


def test_event_times_follow_the_frame_convention_and_clip_duration():
    s = np.zeros((10, 1))
    s[7:, 0] = 1.0
    ev = EventPostprocessor(["a"]).decode(s, timing=(0.016, 0.008), filenames=["f"], clip_duration=0.16)
    assert ev[0][1] == pytest.approx(0.008 + 7 * 0.016) and ev[0][2] == pytest.approx(0.16)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(threshold=1.5), "threshold must lie in"),
        (dict(threshold=0.5, threshold_low=0.6), "threshold_low must not exceed"),
        (dict(threshold=[0.5, 0.5, 0.5]), "per-class values"),
        (dict(median_filter=-1.0), "median_filter must lie in"),
        (dict(min_gap={"zzz": 1.0}), "exactly one entry per class"),
        (dict(threshold=float("nan")), "finite"),
        (dict(clip_threshold="high"), "number"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EventPostprocessor(["a", "b"], **kwargs)


def test_bad_scores_are_refused():
    pp = EventPostprocessor(["a", "b"])
    with pytest.raises(ValueError, match="expected \\(n_frames, 2\\)"):
        pp.decode(np.zeros((3, 4, 3)), timing=T)
    with pytest.raises(ValueError, match="NaN or Inf"):
        pp.decode(np.full((1, 4, 2), np.nan), timing=T)
    with pytest.raises(ValueError, match="no clip"):
        pp.decode([], timing=T)
    with pytest.raises(ValueError, match="filenames has 1 entries"):
        pp.decode(np.zeros((2, 4, 2)), filenames=["a"], timing=T)


def test_round_trip_through_plain_data_and_replace():
    pp = EventPostprocessor(["a", "b"], threshold=[0.6, 0.4], threshold_low=[0.3, 0.2], median_filter=0.1, clip_threshold=[0.5, 0.3])
    d = pp.to_dict()
    assert all(isinstance(v, (list, str, dict)) for v in d.values())
    back = EventPostprocessor.from_dict(d)
    assert back.to_dict() == d
    r = pp.replace(threshold=0.8)
    assert r.threshold.tolist() == [0.8, 0.8]
    assert r.threshold_low.tolist() == pytest.approx([0.4, 0.4])  # the hysteresis ratio is kept
    r = pp.replace(threshold=0.0, threshold_low=None, median_filter=None)  # None: keep (as the CLI passes)
    assert r.threshold.tolist() == [0.0, 0.0] and r.threshold_low.tolist() == [0.0, 0.0]
    assert r.median_filter.tolist() == pp.median_filter.tolist()
    assert pp.replace(clip_threshold=False).clip_threshold is None
    with pytest.raises(ValueError, match="unknown event setting"):
        pp.replace(bogus=1)


def _synthetic(n=60, seed=0, n_frames=100, hop=0.05):
    """Scores with true events of known extent in tagged clips, noise elsewhere."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 2)) < 0.5).astype(int)
    s = rng.uniform(0, 0.3, size=(n, n_frames, 2))
    ref, names = [], [f"c{i}" for i in range(n)]
    for i in range(n):
        for k, lab in enumerate(["short", "long"]):
            if y[i, k]:
                length = 6 if k == 0 else 40
                a = rng.integers(0, n_frames - length)
                s[i, a : a + length, k] = rng.uniform(0.55, 0.95, size=length)
                # long events have dips, as speech has pauses
                if k == 1:
                    s[i, a + 10 : a + 13, k] = 0.35
                ref.append((names[i], a * hop, (a + length) * hop, lab))
    clip = s.max(axis=1)
    return s, clip, y, ref, names


def test_weak_calibration_finds_event_thresholds_and_class_lengths_from_clip_tags_only():
    s, clip, y, ref, names = _synthetic()
    # steps 1-4 as they are (threshold_scale=1: no final scaling; tested below)
    pp = EventPostprocessor.calibrate(s, clip, y, ["short", "long"], timing=(0.05, 0.0), threshold_scale=1.0)
    assert pp.source == "weak"
    assert np.all((pp.threshold > 0.3) & (pp.threshold <= 0.6))  # between noise and events
    L = pp.info["typical_event_length_s"]
    assert L["long"] > 3 * L["short"]  # the long class gets longer smoothing
    assert pp.median_filter[1] > pp.median_filter[0] and pp.min_gap[1] > pp.min_gap[0]
    est = pp.decode(s, clip, names, timing=(0.05, 0.0))
    f_weak = event_based_metrics(ref, est, ["short", "long"], filenames=names)["f_measure"]
    naive = EventPostprocessor(["short", "long"], threshold=0.5).decode(s, clip, names, timing=(0.05, 0.0))
    f_naive = event_based_metrics(ref, naive, ["short", "long"], filenames=names)["f_measure"]
    assert f_weak > f_naive + 0.1  # the dips of "long" are bridged


def test_weak_calibration_scales_both_thresholds_and_nothing_else():
    s, clip, y, _, _ = _synthetic()
    full = EventPostprocessor.calibrate(s, clip, y, ["short", "long"], timing=(0.05, 0.0), threshold_scale=1.0)
    default = EventPostprocessor.calibrate(s, clip, y, ["short", "long"], timing=(0.05, 0.0))
    assert default.info["constants"]["threshold_scale"] == 0.6  # the default chosen on domestic-mix
    assert default.threshold == pytest.approx(0.6 * full.threshold)
    assert default.threshold_low == pytest.approx(0.6 * full.threshold_low)
    for name in ("median_filter", "min_gap", "min_duration", "clip_threshold"):
        assert getattr(default, name).tolist() == getattr(full, name).tolist()
    for bad in (0.0, 1.5, float("nan"), "0.5"):
        with pytest.raises(ValueError, match="threshold_scale"):
            EventPostprocessor.calibrate(s, clip, y, ["short", "long"], timing=(0.05, 0.0), threshold_scale=bad)


def test_a_class_never_tagged_keeps_the_default_threshold_whatever_the_scale():
    s, clip, y, _, _ = _synthetic()
    y[:, 0] = 0
    with pytest.warns(UserWarning, match="never"):
        pp = EventPostprocessor.calibrate(s, clip, y, ["short", "long"], timing=(0.05, 0.0), threshold_scale=0.5)
    assert pp.threshold[0] == 0.5 and pp.threshold[1] < 0.5


def test_weak_calibration_caps_the_median_filter_per_tag():
    s, clip, y, _, _ = _synthetic()
    free = EventPostprocessor.calibrate(s, clip, y, ["short", "long"], timing=(0.05, 0.0), median_max=10.0)
    assert free.median_filter[1] > 0.4  # the long class's filter, uncapped
    capped = EventPostprocessor.calibrate(s, clip, y, ["short", "long"], timing=(0.05, 0.0),
                                          median_max={"short": 10.0, "long": 0.2})
    assert capped.median_filter[1] == pytest.approx(0.2)
    assert capped.median_filter[0] == pytest.approx(free.median_filter[0])  # the other tag keeps its own
    assert capped.info["constants"]["median_max"] == {"short": 10.0, "long": 0.2}
    same = EventPostprocessor.calibrate(s, clip, y, ["short", "long"], timing=(0.05, 0.0), median_max=[10.0, 0.2])
    assert same.to_dict() == capped.to_dict()
    with pytest.raises(ValueError, match="median_max"):
        EventPostprocessor.calibrate(s, clip, y, ["short", "long"], timing=(0.05, 0.0), median_max=[1.0])
    with pytest.raises(ValueError, match="median_max"):
        EventPostprocessor.calibrate(s, clip, y, ["short", "long"], timing=(0.05, 0.0), median_max=-1.0)


def test_weak_calibration_smooths_with_its_own_length_and_bridges_gaps_with_the_typical_one():
    """smooth_quantile takes the smoothing length from the plain quantile of the detected
    lengths; the gap and the minimum duration keep the length-weighted typical length."""
    rng = np.random.default_rng(3)
    n, hop = 80, 0.05
    y = np.zeros((n, 1), dtype=int)
    y[::2] = 1
    s = rng.uniform(0, 0.2, size=(n, 120, 1))
    for i in range(0, n, 2):  # one long event and three short ones per tagged clip
        s[i, 5:85, 0] = 0.9
        for a in (95, 103, 111):
            s[i, a : a + 4, 0] = 0.9
    kw = dict(timing=(hop, 0.0), median_max=10.0)
    weighted = EventPostprocessor.calibrate(s, s.max(axis=1), y, ["x"], **kw)
    plain = EventPostprocessor.calibrate(s, s.max(axis=1), y, ["x"], smooth_quantile=0.5, **kw)
    assert plain.info["smoothing_length_s"]["x"] < 0.5 < weighted.info["smoothing_length_s"]["x"]
    assert plain.median_filter[0] < weighted.median_filter[0]
    # the typical length, which sets the gap, is still the length-weighted one: the 4 s event
    assert plain.info["typical_event_length_s"]["x"] == pytest.approx(4.0, abs=0.15)
    assert plain.min_gap[0] == pytest.approx(plain.info["typical_event_length_s"]["x"])
    # the short events survive the short filter only
    assert plain.smooth(s[:1], timing=(hop, 0.0))[0][112, 0] > 0.8
    assert weighted.smooth(s[:1], timing=(hop, 0.0))[0][112, 0] < 0.3
    with pytest.raises(ValueError, match="smooth_quantile"):
        EventPostprocessor.calibrate(s, s.max(axis=1), y, ["x"], smooth_quantile=1.5, **kw)


def test_weak_calibration_warns_for_a_class_never_tagged():
    s, clip, y, _, _ = _synthetic()
    y[:, 0] = 0
    with pytest.warns(UserWarning, match="never"):
        pp = EventPostprocessor.calibrate(s, clip, y, ["short", "long"], timing=(0.05, 0.0))
    assert pp.threshold[0] == 0.5


def test_strong_tuning_does_not_lose_to_its_start_and_stores_its_score():
    s, clip, y, ref, names = _synthetic(seed=1)
    start = EventPostprocessor(["short", "long"], threshold=0.9)  # a poor start
    pp = EventPostprocessor.tune(s, clip, ref, ["short", "long"], names, timing=(0.05, 0.0), start=start)
    assert pp.source == "strong"

    def f1(p):
        return event_based_metrics(ref, p.decode(s, clip, names, timing=(0.05, 0.0)), ["short", "long"], filenames=names)["f_measure"]

    assert f1(pp) > f1(start) + 0.3
    assert f1(pp) > 0.9
    for lab in ("short", "long"):
        est = [e for e in pp.decode(s, clip, names, timing=(0.05, 0.0)) if e[3] == lab]
        r = event_based_metrics([e for e in ref if e[3] == lab], est, [lab], filenames=names)["f_measure"]
        assert pp.info["event_f1"][lab] == pytest.approx(r)


def test_strong_tuning_refuses_unknown_labels_and_files():
    s, clip, y, ref, names = _synthetic(n=6)
    with pytest.raises(ValueError, match="not in classes"):
        EventPostprocessor.tune(s, clip, ref + [("c0", 0.0, 1.0, "dog")], ["short", "long"], names, timing=T)
    with pytest.raises(ValueError, match="not in filenames"):
        EventPostprocessor.tune(s, clip, ref + [("zz", 0.0, 1.0, "short")], ["short", "long"], names, timing=T)


def test_scores_are_the_smoothed_frame_scores_times_the_clip_probability():
    rng = np.random.default_rng(0)
    s = rng.random((3, 20, 2))
    clip = rng.random((3, 2))
    pp = EventPostprocessor(["a", "b"], median_filter=[0.0, 0.5])
    out = pp.scores(s, clip, timing=0.1)
    smooth = pp.smooth(s, timing=0.1)
    for o, m, c in zip(out, smooth, clip):
        np.testing.assert_allclose(o, m * c[None, :])
    np.testing.assert_allclose(out[0][:, 0], s[0, :, 0] * clip[0, 0])  # no filter on "a"
    assert not np.allclose(smooth[0][:, 1], s[0, :, 1])  # a 5-frame median on "b"
    assert all(np.array_equal(a, b) for a, b in zip(pp.scores(s, None, timing=0.1), smooth))
