"""Frame timing as one required argument, and one event decoder (issue 16).

- Every function that turns frames into seconds takes ``timing`` (a FrameTiming or what
  ``as_frame_timing`` reads), required: no silent default hop.
- Event times scale with the hop and shift with the offset.
- ``frames_to_events`` and ``EventPostprocessor.decode`` are one decoder: same events for
  the same settings, and the same events as the former ``frames_to_events`` (threshold,
  then median filter of the binary activity), re-implemented here as the reference.
"""
import numpy as np
import pytest
from scipy.ndimage import median_filter

from skattloc import LogMelExtractor
from skattloc._checks import check_frame_scores
from skattloc.events import check_timing, events_to_frames, frames_to_events, median_filter_frames
from skattloc.postprocessing import EventPostprocessor
from skattloc.timing import FrameTiming

TIMINGS = [FrameTiming(0.032, 0.0), FrameTiming(0.01, 0.0075), FrameTiming(0.016, 0.008)]


def _event_on_frames_10_to_20(n_frames=40):
    s = np.full((n_frames, 1), 0.1)
    s[10:20, 0] = 0.9  # frames 10 .. 19 active: the event spans edges 10 .. 20
    return s


# ---------------------------------------------------------------------- times follow timing
@pytest.mark.parametrize("timing", TIMINGS, ids=str)
def test_event_times_scale_with_the_hop_and_shift_with_the_offset(timing):
    s = _event_on_frames_10_to_20()
    want_on, want_off = timing.offset_s + 10 * timing.hop_s, timing.offset_s + 20 * timing.hop_s
    for ev in (frames_to_events(s, ["x"], timing=timing, filenames=["f"]),
               EventPostprocessor(["x"]).decode(s, filenames=["f"], timing=timing)):
        assert len(ev) == 1
        assert ev[0][0] == "f" and ev[0][3] == "x"
        assert ev[0][1] == pytest.approx(want_on, abs=1e-12) and ev[0][2] == pytest.approx(want_off, abs=1e-12)
    # and back: the frames whose centres lie in the event are frames 10 .. 19
    back = events_to_frames(ev, ["f"], ["x"], 40, timing=timing)
    np.testing.assert_array_equal(back[0, :, 0], (s[:, 0] > 0.5).astype(np.uint8))


def test_every_form_of_timing_gives_the_same_events():
    s = _event_on_frames_10_to_20()
    want = frames_to_events(s, ["x"], timing=FrameTiming(0.032, 0.0))
    for form in (LogMelExtractor(hop_length=512, n_fft=512), {"hop_s": 0.032, "offset_s": 0.0}, 0.032,
                 (0.032, 0.0), [0.032, 0.0]):
        assert frames_to_events(s, ["x"], timing=form) == want, form
        assert EventPostprocessor(["x"]).decode(s, timing=form) == want, form


def test_the_extractor_timing_differs_from_the_default_one():
    # the bug this argument ends: a hop of 512 samples read with the default 256-sample hop
    s = _event_on_frames_10_to_20()
    ext = LogMelExtractor(hop_length=512)
    ev = frames_to_events(s, ["x"], timing=ext)[0]
    t = ext.frame_timing
    assert (ev[1], ev[2]) == pytest.approx((t.offset_s + 10 * 0.032, t.offset_s + 20 * 0.032))
    assert ev[1] != pytest.approx(frames_to_events(s, ["x"], timing=LogMelExtractor())[0][1])


def test_median_filter_and_gaps_are_measured_with_the_hop():
    s = np.zeros((60, 1))
    s[10:20, 0] = s[22:30, 0] = 0.9  # two events 2 frames apart
    bridge = EventPostprocessor(["x"], min_gap=0.05)
    assert [e[1:3] for e in bridge.decode(s, timing=(0.01, 0.0))] == [pytest.approx((0.1, 0.3))]  # 0.02 s gap
    assert len(bridge.decode(s, timing=(0.05, 0.0))) == 2  # a 0.1 s gap stays
    s[40, 0] = 0.9  # a one-frame blip
    smooth = EventPostprocessor(["x"], median_filter=0.02)
    assert len(smooth.decode(s, timing=(0.01, 0.0))) == 2  # 3 frames: the blip goes
    assert len(smooth.decode(s, timing=(0.05, 0.0))) == 3  # under one frame: no filter
    assert median_filter_frames(0.02, (0.01, 0.0)) == 3 and median_filter_frames(0.02, FrameTiming(0.05, 0.0)) is None
    assert median_filter_frames(0.1, 0.016) == 7  # a hop alone still works


def test_calibration_measures_event_lengths_in_seconds_of_the_timing():
    rng = np.random.default_rng(0)
    y = np.array([[1], [0]] * 10)
    s = rng.uniform(0, 0.1, size=(20, 50, 1))
    s[::2, 10:30] = 0.9  # 20-frame events in the tagged clips
    a = EventPostprocessor.calibrate(s, s.max(axis=1), y, ["dog"], timing=(0.05, 0.0))
    b = EventPostprocessor.calibrate(s, s.max(axis=1), y, ["dog"], timing=(0.1, 0.0))
    assert a.info["typical_event_length_s"]["dog"] == pytest.approx(1.0)
    assert b.info["typical_event_length_s"]["dog"] == pytest.approx(2.0)
    assert b.min_gap[0] == pytest.approx(2 * a.min_gap[0]) and b.threshold[0] == a.threshold[0]


def test_clip_duration_defaults_to_what_the_frames_cover():
    rng = np.random.default_rng(1)
    clips = [rng.random((n, 2)) for n in (30, 17)]
    clips[0][-5:] = 0.99  # events up to the last frame
    t = FrameTiming(0.01, 0.0075)
    pp = EventPostprocessor(["a", "b"])
    given = [t.clip_duration(len(c)) for c in clips]
    assert pp.decode(clips, timing=t) == pp.decode(clips, timing=t, clip_duration=given)
    assert frames_to_events(clips, ["a", "b"], timing=t) == frames_to_events(clips, ["a", "b"], timing=t,
                                                                             clip_duration=given)
    last = max(e[2] for e in pp.decode(clips, timing=t) if e[0] == "clip_00000")
    assert last == pytest.approx(t.frame_edges(30)[-1]) and last < given[0]


# ---------------------------------------------------------------------- timing is required
def _calls():
    s = np.full((1, 10, 1), 0.9)
    pp = EventPostprocessor(["x"])
    return {
        "frames_to_events": lambda **kw: frames_to_events(s, ["x"], **kw),
        "events_to_frames": lambda **kw: events_to_frames([], ["f"], ["x"], 10, **kw),
        "decode": lambda **kw: pp.decode(s, **kw),
        "smooth": lambda **kw: pp.smooth(s, **kw),
        "scores": lambda **kw: pp.scores(s, **kw),
        "calibrate": lambda **kw: EventPostprocessor.calibrate(s, [[0.9]], [[1]], ["x"], **kw),
        "tune": lambda **kw: EventPostprocessor.tune(s, [[0.9]], [], ["x"], ["f"], **kw),
    }


@pytest.mark.parametrize("name", sorted(_calls()))
def test_a_missing_timing_is_an_error_that_names_it(name):
    call = _calls()[name]
    with pytest.raises(TypeError, match="timing"):
        call()
    with pytest.raises(TypeError, match="hop_s"):  # the removed arguments are not taken silently
        call(hop_s=0.032, offset_s=0.0)
    with pytest.raises(ValueError, match="timing is required"):
        call(timing=None)


@pytest.mark.parametrize("name", sorted(_calls()))
@pytest.mark.parametrize("bad, field", [((0, 0), "hop_s must be > 0"), ((-0.01, 0), "hop_s must be > 0"),
                                        ((0.01, -0.005), "offset_s must be >= 0"), ("fast", "timing must be")])
def test_a_bad_timing_is_refused_naming_the_field(name, bad, field):
    with pytest.raises(ValueError, match=field):
        _calls()[name](timing=bad)


def test_a_negative_hop_no_longer_gives_an_empty_event_list():
    s = _event_on_frames_10_to_20()
    with pytest.raises(ValueError, match="timing: hop_s"):
        EventPostprocessor(["x"]).decode(s, timing=(-0.01, 0))
    with pytest.raises(ValueError, match="timing: hop_s"):
        frames_to_events(s, ["x"], timing=(-0.01, 0))


def test_check_timing_reads_every_form_and_refuses_none():
    assert check_timing(LogMelExtractor()) == FrameTiming(0.016, 0.008)
    assert check_timing({"hop_s": 0.02, "offset_s": 0.01}) == FrameTiming(0.02, 0.01)
    with pytest.raises(ValueError, match="timing is required"):
        check_timing(None)


def test_plotting_and_sed_scores_need_timing_too():
    from skattloc.plotting import plot_localization

    rng = np.random.default_rng(0)
    feats, scores = rng.normal(size=(50, 8)), rng.uniform(size=(50, 1))
    with pytest.raises(TypeError, match="timing"):
        plot_localization(feats, scores, ["x"])
    fig = plot_localization(feats, scores, ["x"], timing=FrameTiming(0.032, 0.0))
    assert fig.axes[1].get_xlim() == pytest.approx((0.0, 50 * 0.032))
    np.testing.assert_allclose(fig.axes[1].lines[0].get_xdata()[:2], [0.016, 0.048])


def test_sed_scores_places_frames_with_the_timing():
    sed_scores = pytest.importorskip("skattloc.sed_scores")
    if sed_scores._SSE_PROBLEM is not None:
        pytest.skip(sed_scores._SSE_PROBLEM)
    s = np.zeros((1, 20, 1))
    with pytest.raises(TypeError, match="timing"):
        sed_scores.scores_to_dataframes(s, ["x"], ["a"])
    with pytest.raises(TypeError, match="timing"):
        sed_scores.psds([("a", 0.1, 0.2, "x")], s, ["x"], ["a"], 1.0)
    with pytest.raises(TypeError, match="timing"):
        sed_scores.intersection_f1_from_scores([("a", 0.1, 0.2, "x")], s, ["x"], ["a"], 1.0)
    df = sed_scores.scores_to_dataframes(s, ["x"], ["a"], timing=FrameTiming(0.01, 0.0075))["a"]
    np.testing.assert_allclose(df["onset"].to_numpy()[1:3], [0.0175, 0.0275])
    assert df["onset"].iloc[0] == 0.0 and df["offset"].iloc[-1] == pytest.approx(0.0075 + 20 * 0.01)
    # PSDS of a perfect score is 1 whatever the hop, when the timing matches it
    for hop in (0.032, 0.01):
        n = 100
        s = np.zeros((1, n, 1))
        s[0, 10:20, 0] = 1.0
        ref = [("a", 10 * hop, 20 * hop, "x")]
        assert sed_scores.psds(ref, s, ["x"], ["a"], n * hop, timing=(hop, 0.0)) == pytest.approx(1.0)


# ---------------------------------------------------------------------- one decoder
def _old_frames_to_events(clips, classes, hop, off, thr, width, min_gap, min_dur, names, durations):
    """frames_to_events as it was before the decoders were merged: threshold first, then a
    median filter of the binary activity, runs, gap merging, cut, duration filter."""
    out = []
    for clip, name, dur in zip(clips, names, durations):
        active = clip >= np.asarray(thr)[None, :]
        if width and width > 1 and len(clip):
            active = median_filter(active.astype(np.uint8), size=(width, 1), mode="nearest").astype(bool)
        for k, label in enumerate(classes):
            d = np.diff(np.concatenate(([0], active[:, k].astype(np.int8), [0])))
            starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
            merged = []
            for on, off_ in zip((off + starts * hop).tolist(), (off + stops * hop).tolist()):
                if merged and on - merged[-1][1] < min_gap - 1e-9:
                    merged[-1][1] = off_
                else:
                    merged.append([on, off_])
            for on, off_ in merged:
                if dur is not None:
                    on, off_ = min(max(on, 0.0), dur), min(max(off_, 0.0), dur)
                if off_ > on and off_ - on >= min_dur - 1e-9:
                    out.append((name, float(on), float(off_), label))
    return sorted(out, key=lambda e: (e[0], e[1], e[3], e[2]))


@pytest.mark.parametrize("seed", range(12))
def test_frames_to_events_and_decode_agree_and_match_the_former_decoder(seed):
    rng = np.random.default_rng(seed)
    timing = TIMINGS[seed % len(TIMINGS)]
    n_classes = int(rng.integers(1, 4))
    classes = [f"c{k}" for k in range(n_classes)]
    # smooth-ish random scores with runs, clips of different lengths (one empty)
    clips = [np.clip(np.cumsum(rng.normal(0, 0.2, size=(n, n_classes)), axis=0) % 1.0, 0, 1)
             for n in rng.integers(0, 80, size=4)]
    names = [f"f{i}" for i in range(len(clips))]
    thr = rng.uniform(0.2, 0.8, size=n_classes)
    width = int(rng.choice([1, 3, 5, 7]))
    min_gap = float(rng.choice([0.0, 2.5])) * timing.hop_s
    min_dur = float(rng.choice([0.0, 3.5])) * timing.hop_s
    durations = None if seed % 2 else [timing.clip_duration(len(c)) * 0.9 + 0.01 for c in clips]

    a = frames_to_events(clips, classes, timing=timing, threshold=thr, median_filter=width, min_gap=min_gap,
                         min_duration=min_dur, filenames=names, clip_duration=durations)
    pp = EventPostprocessor(classes, threshold=thr, median_filter=(width - 1) * timing.hop_s, min_gap=min_gap,
                            min_duration=min_dur)
    assert [median_filter_frames(w, timing) or 1 for w in pp.median_filter] == [width] * n_classes
    b = pp.decode(clips, filenames=names, timing=timing, clip_duration=durations)
    assert a == b
    old = _old_frames_to_events(clips, classes, timing.hop_s, timing.offset_s, thr, width, min_gap, min_dur,
                                names, durations if durations is not None else [None] * len(clips))
    assert len(a) == len(old) and all(x[0] == y[0] and x[3] == y[3] for x, y in zip(a, old))
    np.testing.assert_array_equal([x[1:3] for x in a], [y[1:3] for y in old])  # bit for bit
    if seed == 0:
        assert len(a) > 3  # the case is not trivial


def test_decode_with_gate_and_hysteresis_is_frames_to_events_where_they_coincide():
    s = np.array([0.1, 0.35, 0.45, 0.9, 0.6, 0.45, 0.2, 0.5, 0.1])[:, None]
    t = FrameTiming(1.0, 0.0)
    # hysteresis with low == high is a single threshold
    assert EventPostprocessor(["a"], threshold=0.45, threshold_low=0.45).decode(s, timing=t) == \
        frames_to_events(s, ["a"], timing=t, threshold=0.45)
    # a clip gate that lets every clip through changes nothing
    gated = EventPostprocessor(["a"], threshold=0.45, clip_threshold=0.5)
    assert gated.decode(s, [[0.5]], timing=t) == frames_to_events(s, ["a"], timing=t, threshold=0.45)
    assert gated.decode(s, [[0.49]], timing=t) == []


# ---------------------------------------------------------------------- one frame-score check
def test_one_frame_score_check_for_every_module():
    assert [c.shape for c in check_frame_scores(np.zeros((2, 5, 3)))] == [(5, 3), (5, 3)]
    with pytest.raises(ValueError, match=r"frame_scores\[1\] has shape \(4, 2\): 2 class columns but clip 0 has 3"):
        check_frame_scores([np.zeros((5, 3)), np.zeros((4, 2))])
    with pytest.raises(ValueError, match=r"classes has 2 labels; expected \(n_frames, 2\)"):
        check_frame_scores(np.zeros((5, 3)), 2)
    with pytest.raises(ValueError, match=r"frame_scores\[0\] contains 1 NaN or infinite value"):
        check_frame_scores([np.array([[0.0], [np.inf]])])
    with pytest.raises(ValueError, match="Empty input: frame_scores contains no clips"):
        check_frame_scores([])
    with pytest.raises(ValueError, match=r"Empty input: y\[0\] has no frames"):
        check_frame_scores([np.zeros((0, 1))], name="y", min_frames=1)
    assert len(check_frame_scores([np.zeros((0, 1))])) == 1  # empty clips pass unless refused
    # the same messages from events and post-processing
    for call in (lambda x: frames_to_events(x, ["a", "b"], timing=0.01),
                 lambda x: EventPostprocessor(["a", "b"]).decode(x, timing=0.01)):
        with pytest.raises(ValueError, match=r"3 class columns but classes has 2 labels"):
            call(np.zeros((4, 3)))
        with pytest.raises(ValueError, match="NaN or infinite"):
            call(np.full((4, 2), np.nan))
