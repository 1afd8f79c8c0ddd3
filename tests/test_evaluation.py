"""skattloc.evaluation: the evaluation report that ``skattloc evaluate`` prints, as library API."""
import json
import math

import numpy as np
import pytest

from skattloc.evaluation import EvaluationReport, evaluate_scores, evaluate_tagger
from skattloc.metrics import equal_error_rate, event_based_metrics, segment_based_metrics
from skattloc.postprocessing import EventPostprocessor
from skattloc.timing import FrameTiming

TIMING = FrameTiming(0.01, 0.0)
CLASSES = ["dog", "cat"]


def _case():
    """Three 1 s clips (100 frames of 10 ms): a dog event in a.wav, a cat event in b.wav, nothing in c.wav."""
    frames = [np.zeros((100, 2)) for _ in range(3)]
    frames[0][20:60, 0] = 1.0
    frames[1][50:90, 1] = 1.0
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.3]])
    tags = [["dog"], ["cat"], []]
    reference = [("a.wav", 0.2, 0.6, "dog"), ("b.wav", 0.5, 0.9, "cat")]
    return frames, proba, tags, reference, ["a.wav", "b.wav", "c.wav"]


def _report(**kw):
    frames, proba, tags, reference, names = _case()
    args = dict(classes=CLASSES, postprocessor=EventPostprocessor(CLASSES), timing=TIMING, reference=reference,
                filenames=names)
    args.update(kw)
    return evaluate_scores(frames, proba, tags, **args)


def test_eer_only_without_event_times():
    frames, proba, tags, _, _ = _case()
    report = evaluate_scores(None, proba, tags, classes=CLASSES, postprocessor=EventPostprocessor(CLASSES),
                             timing=TIMING)
    Y = np.array([[1, 0], [0, 1], [0, 0]])
    np.testing.assert_allclose(report.eer, equal_error_rate(Y, proba, average=None))
    assert report.eer_macro == pytest.approx(np.mean(report.eer))
    assert report.segment is None and report.event is None and report.psds1 is None and report.events is None
    assert [list(r) for r in report.rows()] == [["tag", "n_clips", "eer"]] * 3
    assert "no event times" in report.notes[0]


def test_event_metrics_are_those_of_skattloc_metrics_on_the_decoded_events():
    frames, proba, tags, reference, names = _case()
    report = _report(psds=False)
    est = EventPostprocessor(CLASSES).decode(frames, proba, names, timing=TIMING, clip_duration=1.0)
    assert report.events == est == [("a.wav", 0.2, 0.6, "dog"), ("b.wav", 0.5, 0.9, "cat")]
    seg = segment_based_metrics(reference, est, CLASSES, segment_length=1.0, filenames=names, durations=1.0)
    ev = event_based_metrics(reference, est, CLASSES, t_collar=0.2, percentage_of_length=0.2, filenames=names)
    assert report.segment["f_measure"] == seg["f_measure"] and report.event["f_measure"] == ev["f_measure"] == 1.0
    assert report.event["error_rate"] == ev["error_rate"] == 0.0
    assert report.n_reference_events == 2 and report.positives.tolist() == [1, 1]
    rows = report.rows()
    assert [r["tag"] for r in rows][:2] == CLASSES and rows[-1]["n_clips"] == 3
    assert list(rows[0])[:9] == ["tag", "n_clips", "eer", "segment_f1", "segment_precision", "segment_recall",
                                 "segment_error_rate", "event_f1", "event_error_rate"]
    assert rows[0]["event_f1"] == 1.0 and rows[-1]["event_error_rate"] == 0.0


def test_tags_default_to_those_of_the_events():
    frames, proba, tags, reference, names = _case()
    a = _report(psds=False)
    b = evaluate_scores(frames, proba, None, classes=CLASSES, postprocessor=EventPostprocessor(CLASSES), timing=TIMING,
                        reference=reference, filenames=names, psds=False)
    np.testing.assert_array_equal(a.eer, b.eer)


def test_psds_and_intersection_f1_with_sed_scores_eval():
    pytest.importorskip("sed_scores_eval")
    report = _report()
    assert report.intersection is not None and 0 <= report.psds1 <= 1 and 0 <= report.psds2 <= 1
    assert set(report.psds1_per_class) == set(CLASSES)
    assert {"intersection_f1", "psds1", "psds2"} <= set(report.rows()[-1])
    assert not any("sed_scores_eval" in n for n in report.notes)
    assert any("PSDS1/PSDS2" in n for n in report.notes)


def test_no_reference_event_is_not_reported_as_a_missing_sed_scores_eval():
    """`skattloc evaluate` used to say 'PSDS ... need sed_scores_eval' whenever PSDS was not
    computed, also when it was installed and the reference simply had no event."""
    pytest.importorskip("sed_scores_eval")
    report = _report(reference=[])
    assert report.psds1 is None and report.intersection is None
    assert not any("sed_scores_eval" in n for n in report.notes), report.notes
    assert any("the reference holds no event" in n for n in report.notes), report.notes
    assert report.event is not None  # the event metrics are still computed (no reference: recall undefined)


def test_missing_sed_scores_eval_is_said_with_the_reason(monkeypatch):
    from skattloc import sed_scores

    def unavailable():
        raise ImportError('PSDS and intersection-based F1 need the optional package sed_scores_eval '
                          '(import failed: No module named sed_scores_eval). Install it with: pip install "skattloc[psds]"')

    monkeypatch.setattr(sed_scores, "check_available", unavailable)
    report = _report()
    assert report.psds1 is None and report.intersection is None
    assert any("sed_scores_eval" in n and "skattloc[psds]" in n for n in report.notes)
    assert "psds1" not in report.rows()[0] and "event_f1" in report.rows()[0]


def test_text_table_csv_rows_and_dict():
    report = _report(psds=False)
    text = report.to_text()
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["tag", "n_clips", "eer"] and lines[1].startswith("dog")
    assert lines[-1].startswith("(") and "n/a" not in lines[1]
    assert report.to_text(notes=False).splitlines() == lines[:4]
    header, rows = report.table()
    assert header == list(report.rows()[0]) and rows[0][:2] == ["dog", 1] and rows[0][2] == f"{report.eer[0]:.6f}"
    d = report.to_dict()
    assert json.loads(json.dumps(d))["events"] == [["a.wav", 0.2, 0.6, "dog"], ["b.wav", 0.5, 0.9, "cat"]]
    assert d["eer"] == report.eer.tolist() and d["rows"][-1]["tag"].startswith("macro")
    assert isinstance(report, EvaluationReport) and str(report) == text


def test_undefined_eer_is_nan_and_shown_as_n_a():
    frames, proba, _, reference, names = _case()
    report = _report(psds=False, reference=None)
    report2 = evaluate_scores(None, proba, [["dog"], ["dog"], ["dog"]], classes=CLASSES,
                              postprocessor=EventPostprocessor(CLASSES), timing=TIMING)
    assert math.isnan(report2.eer[0]) and math.isnan(report2.eer[1]) and math.isnan(report2.eer_macro)
    assert "n/a" in report2.to_text() and report.eer_macro == report.eer_macro


@pytest.mark.parametrize("kw, match", [
    (dict(reference=[("z.wav", 0.1, 0.2, "dog")]), r"1 file\(s\) that are not among the 3 clips: 'z.wav'"),
    (dict(reference=[("a.wav", 0.1, 0.2, "cow")]), r"tags \['cow'\] that the tagger does not know"),
    (dict(filenames=None), "needs filenames"),
    (dict(filenames=["a.wav", "b.wav"]), "2 names but there are 3 clips"),
    (dict(filenames=["a.wav", "a.wav", "c.wav"]), "names clips twice: 'a.wav'"),
    (dict(clip_duration=[1.0]), "1 lengths but there are 3 clips"),
])
def test_bad_references_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        _report(psds=False, **kw)


def test_clip_tags_outside_the_classes_are_refused():
    frames, proba, _, _, _ = _case()
    with pytest.raises(ValueError, match="cow"):
        evaluate_scores(None, proba, [["cow"], [], []], classes=CLASSES, postprocessor=EventPostprocessor(CLASSES),
                        timing=TIMING)


def test_evaluate_tagger_is_one_forward_pass_with_the_taggers_own_events():
    from skattloc import AttLocTagger, LogMelExtractor, make_weak_events

    audio, Y, events = make_weak_events(n_clips=24, n_classes=2, duration=1.0, random_state=0)
    X = LogMelExtractor().fit_transform(audio)
    tags = [[c for c, y in zip(["tone", "chirp"], row) if y] for row in Y]
    tagger = AttLocTagger(n_filters=4, kernel_size=3, rnn_hidden=4, rnn_layers=1, dense_units=4, max_epochs=1,
                          validation_fraction=0.25, batch_size=8, random_state=0).fit(X, tags)
    Y = Y[:, [1, 0]]  # classes_ are sorted: chirp, tone
    names = [f"c{i}.wav" for i in range(24)]
    reference = [(names[i], on, off, tag) for i, on, off, tag in events]
    before = dict(tagger.event_settings_)
    report = evaluate_tagger(tagger, X, tags, reference=reference, filenames=names, psds=False)
    assert report.classes == ["chirp", "tone"] and report.events == tagger.detect_events(X, filenames=names)
    np.testing.assert_allclose(report.eer, equal_error_rate(Y, tagger.predict_proba(X), average=None))
    low = evaluate_tagger(tagger, X, tags, reference=reference, filenames=names, psds=False, threshold=0.0,
                          clip_threshold=False)  # event settings overridden for this evaluation only
    assert low.events == tagger.detect_events(X, filenames=names, threshold=0.0, clip_threshold=False)
    assert tagger.event_settings_ == before


# --------------------------------------------------------------------------- merged references (issue 19)
def test_merge_overlapping_events_joins_overlapping_and_touching_events_of_one_tag_in_one_clip():
    from skattloc.metrics import merge_overlapping_events

    events = [("a.wav", 0.5, 2.0, "m"), ("a.wav", 1.5, 3.0, "m"), ("a.wav", 3.0, 3.5, "m"),  # a chain of three
              ("a.wav", 3.6, 3.9, "m"),  # a gap: stays apart
              ("a.wav", 1.0, 1.2, "b"),  # another tag, inside the speech: untouched
              ("b.wav", 1.0, 2.5, "m"), {"filename": "b.wav", "onset": 2.0, "offset": 2.2, "event_label": "m"}]
    assert merge_overlapping_events(events) == [
        ("a.wav", 0.5, 3.5, "m"), ("a.wav", 1.0, 1.2, "b"), ("a.wav", 3.6, 3.9, "m"), ("b.wav", 1.0, 2.5, "m")]
    assert merge_overlapping_events([]) == []
    with pytest.raises(ValueError, match=r"events\[0\]"):
        merge_overlapping_events([("a.wav", 1.0)])


def test_event_f1_headline_scores_against_merged_references_and_keeps_the_raw_list_beside():
    """Two overlapping dog events in a.wav: the one detected event spanning both matches the
    merged reference (F1 1), but against the raw list it can match only one of the two, so
    the other counts as missed (raw F1 below 1)."""
    frames, proba, tags, _, names = _case()
    reference = [("a.wav", 0.2, 0.5, "dog"), ("a.wav", 0.3, 0.6, "dog"), ("b.wav", 0.5, 0.9, "cat")]
    report = _report(reference=reference, psds=False)
    assert report.events == [("a.wav", 0.2, 0.6, "dog"), ("b.wav", 0.5, 0.9, "cat")]
    merged = [("a.wav", 0.2, 0.6, "dog"), ("b.wav", 0.5, 0.9, "cat")]
    ev = event_based_metrics(merged, report.events, CLASSES, filenames=names)
    raw = event_based_metrics(reference, report.events, CLASSES, filenames=names)
    assert report.event["f_measure"] == ev["f_measure"] == 1.0
    assert report.event_raw["f_measure"] == raw["f_measure"] < 1.0
    rows = report.rows()
    assert rows[0]["event_f1"] == 1.0 and rows[0]["event_f1_raw"] == raw["class_wise"]["dog"]["f_measure"]
    assert rows[-1]["event_f1_raw"] == raw["f_measure"]
    note = next(n for n in report.notes if n.startswith("event F1"))
    assert "merged (2 of 3 events left)" in note and "class-macro 1.000" in note
    assert report.to_dict()["event_raw"]["f_measure"] == raw["f_measure"]
    assert report.n_reference_events == 3  # the reference as given


# --------------------------------------------------------------------------- confidence intervals (issue 19)
def _many_clips(n=40, seed=0):
    """n clips of 1 s: every other clip has a dog event, detected well in most clips."""
    rng = np.random.default_rng(seed)
    frames, ref, tags = [], [], []
    for i in range(n):
        s = rng.uniform(0, 0.2, size=(100, 2))
        if i % 2 == 0:
            on = int(rng.integers(0, 50))
            ref.append((f"c{i}.wav", on / 100, (on + 40) / 100, "dog"))
            s[on + int(rng.integers(-15, 15)) if i % 6 else on: on + 40, 0] = 0.9
            tags.append(["dog"])
        else:
            tags.append([])
        frames.append(s)
    proba = np.array([[0.9 if t else rng.uniform(0, 0.6), 0.1] for t in tags])
    return frames, proba, tags, ref, [f"c{i}.wav" for i in range(n)]


def test_bootstrap_intervals_bracket_the_point_values_and_follow_their_confidence():
    frames, proba, tags, ref, names = _many_clips()
    kw = dict(classes=["dog", "cat"], postprocessor=EventPostprocessor(["dog", "cat"]), timing=TIMING,
              reference=ref, filenames=names, psds=False)
    plain = evaluate_scores(frames, proba, tags, **kw)
    assert plain.intervals == {} and "bootstrap" not in plain.settings
    r95 = evaluate_scores(frames, proba, tags, bootstrap=400, random_state=1, **kw)
    r50 = evaluate_scores(frames, proba, tags, bootstrap=400, confidence=0.5, random_state=1, **kw)
    assert set(r95.intervals) == {"eer_macro", "event_f1", "event_f1_macro", "segment_f1"}
    for key, point in (("event_f1", r95.event["f_measure"]), ("segment_f1", r95.segment["f_measure"]),
                       ("event_f1_macro", r95.event["class_wise_average"]["f_measure"])):
        lo, hi = r95.intervals[key]
        assert lo <= point <= hi and hi - lo > 0.01, (key, lo, point, hi)
        lo50, hi50 = r50.intervals[key]
        assert lo <= lo50 <= hi50 <= hi and hi50 - lo50 < hi - lo
    assert r95.settings["bootstrap"] == 400 and r95.settings["confidence"] == 0.95
    assert any(n.startswith("95% intervals, 400 resamples") for n in r95.notes)
    again = evaluate_scores(frames, proba, tags, bootstrap=400, random_state=1, **kw)
    assert again.intervals == r95.intervals  # seeded


def test_bootstrap_resamples_are_paired_across_systems_on_the_same_clips():
    frames, proba, tags, ref, names = _many_clips()
    kw = dict(classes=["dog", "cat"], postprocessor=EventPostprocessor(["dog", "cat"]), timing=TIMING,
              reference=ref, filenames=names, psds=False, bootstrap=300, random_state=2)
    a = evaluate_scores(frames, proba, tags, **kw)
    assert set(a.resamples) == set(a.intervals) and all(len(v) == 300 for v in a.resamples.values())
    lo, hi = np.percentile(a.resamples["event_f1"], [2.5, 97.5])
    assert (lo, hi) == pytest.approx(a.intervals["event_f1"])
    # a second system: the same clips, its frame scores flattened (no events at all)
    b = evaluate_scores([f * 0.1 for f in frames], proba, tags, **kw)
    diff = a.resamples["segment_f1"] - np.nan_to_num(b.resamples["segment_f1"])
    assert np.all(diff > 0)  # paired draw by draw: a finds the events in every resample, b none
    # the same draws: the clip-tag EER of two systems with the same clip probabilities agrees per draw
    np.testing.assert_array_equal(a.resamples["eer_macro"], b.resamples["eer_macro"])


def test_bootstrap_resampled_counts_are_those_of_the_metrics_on_the_resampled_clips():
    """One resample by hand: clips repeated under new names, scored by skattloc.metrics."""
    from skattloc.evaluation import _clip_counts, _resampled_f1
    from skattloc.metrics import merge_overlapping_events

    frames, proba, tags, ref, names = _many_clips(n=12, seed=3)
    est = EventPostprocessor(CLASSES).decode(frames, proba, names, timing=TIMING, clip_duration=1.0)
    durations = {f: 1.0 for f in names}
    settings = dict(segment_length=1.0, t_collar=0.2, percentage_of_length=0.2)
    counts = _clip_counts(merge_overlapping_events(ref), est, CLASSES, names, durations, settings)
    draw = np.array([0, 0, 2, 5, 5, 5, 7, 8, 10, 11, 11, 3])
    f1 = _resampled_f1(counts, draw[None])
    new = [f"{names[i]}#{k}" for k, i in enumerate(draw)]
    rename = lambda evs, i, k: [(new[k], on, off, t) for f, on, off, t in evs if f == names[i]]  # noqa: E731
    ref_r = [e for k, i in enumerate(draw) for e in rename(ref, i, k)]
    est_r = [e for k, i in enumerate(draw) for e in rename(est, i, k)]
    ev = event_based_metrics(ref_r, est_r, CLASSES, filenames=new)
    seg = segment_based_metrics(ref_r, est_r, CLASSES, segment_length=1.0, filenames=new,
                                durations={f: 1.0 for f in new})
    assert f1["event_f1"][0] == pytest.approx(ev["f_measure"])
    assert f1["segment_f1"][0] == pytest.approx(seg["f_measure"])
    assert f1["event_f1_macro"][0] == pytest.approx(ev["class_wise_average"]["f_measure"], nan_ok=True)


def test_bootstrap_of_psds_uses_sed_scores_eval_subsets():
    pytest.importorskip("sed_scores_eval")
    frames, proba, tags, ref, names = _many_clips()
    r = evaluate_scores(frames, proba, tags, classes=["dog", "cat"], postprocessor=EventPostprocessor(["dog", "cat"]),
                        timing=TIMING, reference=ref, filenames=names, bootstrap=20)
    lo, hi = r.intervals["psds1"]
    assert 0 <= lo <= hi <= 1 and lo <= r.psds1 + 1e-9
    assert set(r.intervals) >= {"psds1", "psds2", "eer_macro", "event_f1"}


@pytest.mark.parametrize("kw, match", [(dict(bootstrap=-1), "bootstrap"), (dict(bootstrap=1.5), "bootstrap"),
                                       (dict(bootstrap=10, confidence=1.0), "confidence")])
def test_bootstrap_arguments_are_checked(kw, match):
    with pytest.raises(ValueError, match=match):
        _report(**kw)


def test_psds2_of_a_single_tag_has_no_cross_triggers_instead_of_failing():
    """sed_scores_eval raised TypeError ('unhashable type') for scenario 2 with one class."""
    pytest.importorskip("sed_scores_eval")
    from skattloc.sed_scores import psds

    ref = [("a.wav", 2.0, 5.0, "dog")]
    s = np.zeros((1, 10, 1))
    s[0, 2:5, 0] = 0.9
    p2 = psds(ref, s, ["dog"], ["a.wav"], 10.0, scenario=2, timing=(1.0, 0.0))
    same = psds(ref, s, ["dog"], ["a.wav"], 10.0, scenario=2, timing=(1.0, 0.0), cttc_threshold=None, alpha_ct=0.0)
    assert p2 == same == 1.0
