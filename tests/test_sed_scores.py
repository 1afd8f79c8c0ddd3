"""Tests for skattloc.sed_scores: PSDS and intersection-based F1 through sed_scores_eval.

The hand-made cases use 1 s frames starting at 0 s (``hop_s=1, offset_s=0``) so that
every expected value can be derived on paper; the derivation is in the comments.
Notation: DTC = detection tolerance criterion (share of a detection inside reference
events of its class), GTC = ground-truth intersection criterion (share of a reference
event covered by detections that pass the DTC), eFPR in false positives per hour.
"""
import importlib.metadata
import math
import sys
import tomllib
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

sse = pytest.importorskip("sed_scores_eval")

from skattloc import sed_scores  # noqa: E402
from skattloc.events import frames_to_events  # noqa: E402
from skattloc.timing import FrameTiming  # noqa: E402
from skattloc.sed_scores import (  # noqa: E402
    PSDS_SCENARIOS,
    intersection_f1,
    intersection_f1_from_scores,
    psds,
    scores_to_dataframes,
)

if sed_scores._SSE_PROBLEM is not None:  # e.g. pandas >= 3 with sed_scores_eval 0.0.4
    pytest.skip(sed_scores._SSE_PROBLEM, allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
T = FrameTiming(0.016, 0.008)  # the default extractor's timing
ONE = dict(timing=FrameTiming(1.0, 0.0))  # frame i covers [i, i + 1) s
CL = ["dog", "cat"]


def _cw(r, label):
    d = r["class_wise"][label]
    return d["f_measure"], d["precision"], d["recall"]


# --------------------------------------------------------------------------
# packaging and scenario constants
# --------------------------------------------------------------------------
def test_psds_extra_is_declared_and_in_dev():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "sed_scores_eval==0.0.4" in extras["psds"]
    assert "sed_scores_eval==0.0.4" in extras["dev"]
    assert any(r.replace(" ", "").startswith("pandas<3") for r in extras["psds"])


def test_scenarios_are_the_dcase_task4_settings():
    # DCASE 2021-2024 task 4 / DESED_task baselines (compute_psds_from_scores calls).
    assert dict(PSDS_SCENARIOS[1]) == dict(dtc_threshold=0.7, gtc_threshold=0.7, cttc_threshold=None,
                                          alpha_ct=0.0, alpha_st=1.0, max_efpr=100.0)
    assert dict(PSDS_SCENARIOS[2]) == dict(dtc_threshold=0.1, gtc_threshold=0.1, cttc_threshold=0.3,
                                          alpha_ct=0.5, alpha_st=1.0, max_efpr=100.0)
    with pytest.raises(TypeError):
        PSDS_SCENARIOS[1]["dtc_threshold"] = 0.5  # read-only


# --------------------------------------------------------------------------
# PSDS, hand-made cases
# --------------------------------------------------------------------------
REF = [("a", 2.0, 5.0, "dog"), ("a", 6.0, 8.0, "cat")]


def _perfect():
    s = np.zeros((1, 10, 2))
    s[0, 2:5, 0] = 0.9
    s[0, 6:8, 1] = 0.8
    return s


@pytest.mark.parametrize("scenario", [1, 2])
def test_psds_of_perfect_scores_is_one(scenario):
    # Any threshold in (0, 0.8) detects exactly the two reference events: TPR 1 at
    # eFPR 0 for both classes, so the PSD-ROC is 1 everywhere and the area is 1.
    value, det = psds(REF, _perfect(), CL, ["a"], 10.0, scenario=scenario, return_details=True, **ONE)
    assert value == pytest.approx(1.0)
    assert det["class_wise"] == pytest.approx({"dog": 1.0, "cat": 1.0})
    assert det["params"]["dtc_threshold"] == PSDS_SCENARIOS[scenario]["dtc_threshold"]
    assert det["roc"]["etpr"].shape == det["roc"]["efpr"].shape
    assert det["roc"]["efpr"][-1] == pytest.approx(100.0)


def test_psds_of_a_constant_score_scenario1_zero_scenario2_half():
    # Clip a (10 s): dog 2-5 s, cat 6-8 s; clip b (62 s): no events; total 72 s = 0.02 h.
    # A constant score has one operating point: each class detected over each whole clip.
    # Scenario 1: in a, the dog detection lies 3/10 = 0.3 < 0.7 inside dog events (cat:
    # 2/10) -> DTC fails, nothing is ever detected: TPR 0, PSDS1 = 0.
    # Scenario 2: 0.3 and 0.2 >= 0.1 pass the DTC and cover 100 % >= 0.1 of their
    # events -> TPR 1; the clip-long detection in b is 1 FP per class -> FPR = 1 / 0.02 h
    # = 50 /h; it overlaps no other class, so no cross-trigger.  ROC: TPR 0 on [0, 50),
    # 1 on [50, 100] for both classes (std 0) -> PSDS2 = (100 - 50) / 100 = 0.5.
    scores = [np.full((10, 2), 0.5), np.full((62, 2), 0.5)]
    dur = {"a": 10.0, "b": 62.0}
    assert psds(REF, scores, CL, ["a", "b"], dur, scenario=1, **ONE) == pytest.approx(0.0)
    assert psds(REF, scores, CL, ["a", "b"], dur, scenario=2, **ONE) == pytest.approx(0.5)
    # Same ROC, area up to 200 /h: (200 - 50) / 200.
    assert psds(REF, scores, CL, ["a", "b"], dur, scenario=2, max_efpr=200.0, **ONE) == pytest.approx(0.75)
    # Without clip b there is no false positive: the whole-clip detection wins scenario 2.
    assert psds(REF, scores[:1], CL, ["a"], 10.0, scenario=2, **ONE) == pytest.approx(1.0)


def test_psds_alpha_st_penalizes_unequal_classes():
    # dog perfect (per-class PSDS 1), cat scored 0 everywhere: its only detection is the
    # whole clip at threshold < 0, 2/10 inside cat -> DTC fails (1 FP = 360 /h > 100),
    # so cat's TPR is 0 up to 100 /h (per-class PSDS 0).  eTPR = mean - alpha_st * std
    # = 0.5 - 1 * 0.5 = 0 -> PSDS1 = 0; with alpha_st = 0 it is the mean, 0.5.
    s = np.zeros((1, 10, 2))
    s[0, 2:5, 0] = 0.9
    value, det = psds(REF, s, CL, ["a"], 10.0, return_details=True, **ONE)
    assert value == pytest.approx(0.0)
    assert det["class_wise"] == pytest.approx({"dog": 1.0, "cat": 0.0})
    assert psds(REF, s, CL, ["a"], 10.0, alpha_st=0.0, **ONE) == pytest.approx(0.5)


def test_psds_depends_on_the_ranking_of_true_and_false_positives():
    # One class.  Clip a (10 s): dog 2-5 s.  Clip b (62 s): no event.  Total 0.02 h.
    a, b = np.zeros((10, 1)), np.zeros((62, 1))
    a[2:5], b[10:13] = 0.6, 0.9  # the false positive (in b) outranks the true one
    # th in (0.6, 0.9): only the FP -> (eFPR 50, TPR 0); th in (0, 0.6): + the TP ->
    # (50, 1).  Area: TPR 1 on [50, 100] -> 0.5.
    dur = {"a": 10.0, "b": 62.0}
    assert psds([("a", 2.0, 5.0, "dog")], [a, b], ["dog"], ["a", "b"], dur, **ONE) == pytest.approx(0.5)
    # Swap the scores: the TP comes first at eFPR 0 -> PSDS 1.
    a[2:5], b[10:13] = 0.9, 0.6
    assert psds([("a", 2.0, 5.0, "dog")], [a, b], ["dog"], ["a", "b"], dur, **ONE) == pytest.approx(1.0)


def test_psds_scenario2_cross_trigger_penalty():
    # One clip of 3600 s (1 h): cat 100-460 s (360 s = 0.1 h), dog 1000-1010 s.
    # Scores: dog 0.9 on 200-210 s (inside the cat event), dog 0.8 on 1000-1010 s,
    # cat 0.9 on 100-460 s.
    # dog, th in (0.8, 0.9): the 200-210 s detection overlaps no dog -> FP (1 /h); it lies
    #   10/10 >= cttc 0.3 inside cat -> cross-trigger: 1 per 0.1 h of cat = 10 /h;
    #   eFPR = 1 + alpha_ct * 10 = 1 + 0.5 * 10 = 6 /h, TPR 0.  th in (0, 0.8): + the true
    #   detection -> (6, 1).  th < 0 (whole clip): 10/3600 < 0.1 -> FP, only 360/3600 =
    #   0.1 < 0.3 inside cat -> no cross-trigger: (1, 0).  dog's ROC: 0 below 6, 1 after.
    # cat: its detection is exact -> TPR 1 at eFPR 0.
    # eTPR = mean - std over {dog, cat} = 0 on [0, 6), 1 on [6, 100] -> PSDS2 = 0.94.
    # Without the cross-trigger penalty (alpha_ct 0): dog's eFPR is 1 -> 0.99.
    # Scenario 1 has no cross-trigger term: same 0.99.
    s = np.zeros((3600, 2))
    s[200:210, 0], s[1000:1010, 0], s[100:460, 1] = 0.9, 0.8, 0.9
    ref = [("long", 100.0, 460.0, "cat"), ("long", 1000.0, 1010.0, "dog")]
    run = lambda **kw: psds(ref, [s], CL, ["long"], 3600.0, **ONE, **kw)  # noqa: E731
    assert run(scenario=2) == pytest.approx(0.94)
    assert run(scenario=2, alpha_ct=0.0, cttc_threshold=None) == pytest.approx(0.99)
    assert run(scenario=1) == pytest.approx(0.99)


def test_psds_is_invariant_to_clip_and_event_order_and_to_monotone_score_maps():
    rng = np.random.default_rng(0)
    files = ["c.wav", "a.wav", "b.wav"]
    scores = [rng.uniform(size=(n, 2)) for n in (40, 25, 33)]
    ref = [("c.wav", 3.0, 9.5, "dog"), ("a.wav", 1.0, 4.0, "cat"), ("b.wav", 10.0, 20.0, "dog"),
           ("b.wav", 2.0, 6.0, "cat"), ("c.wav", 20.0, 30.0, "cat")]
    dur = {"a.wav": 25.0, "b.wav": 33.0, "c.wav": 40.0}
    base = psds(ref, scores, CL, files, dur, scenario=2, **ONE)
    perm = [2, 0, 1]
    assert psds(ref[::-1], [scores[i] for i in perm], CL, [files[i] for i in perm], dur,
                scenario=2, **ONE) == pytest.approx(base)
    # PSDS only depends on the order of the scores.
    assert psds(ref, [s ** 3 for s in scores], CL, files, dur, scenario=2, **ONE) == pytest.approx(base)


# --------------------------------------------------------------------------
# intersection-based F1, hand-made cases
# --------------------------------------------------------------------------
def test_f1_of_perfect_events_is_one_and_of_disjoint_events_is_zero():
    r = intersection_f1(REF, REF, CL, ["a"], 10.0)
    assert (r["f_measure"], r["precision"], r["recall"]) == (1.0, 1.0, 1.0)
    assert r["micro"] == {"f_measure": 1.0, "precision": 1.0, "recall": 1.0}
    assert (r["n_ref"], r["n_sys"], r["n_tp"], r["n_fp"], r["n_files"]) == (2, 2, 2, 0, 1)
    # No overlap at all: both detections fail the DTC (FP), no reference is covered.
    est = [("a", 7.0, 9.0, "dog"), ("a", 0.0, 1.0, "cat")]
    r = intersection_f1(REF, est, CL, ["a"], 10.0)
    assert (r["f_measure"], r["precision"], r["recall"]) == (0.0, 0.0, 0.0)
    assert r["class_wise"]["dog"]["n_fp"] == 1 and r["class_wise"]["dog"]["n_tp"] == 0


# reference dog 2-6 s (4 s) in a 10 s clip
@pytest.mark.parametrize(
    "est, dtc, gtc, expected",
    [
        # 4-8 s: 2 of its 4 s inside (DTC 0.5), covers 2 of 4 s (GTC 0.5)
        ([(4.0, 8.0)], 0.7, 0.7, (0.0, 0.0, 0.0)),  # DTC 0.5 < 0.7: FP; nothing detected
        ([(4.0, 8.0)], 0.5, 0.5, (1.0, 1.0, 1.0)),  # 0.5 >= 0.5 on both: TP
        ([(4.0, 8.0)], 0.1, 0.1, (1.0, 1.0, 1.0)),
        ([(4.0, 8.0)], 0.6, 0.1, (0.0, 0.0, 0.0)),  # fails DTC only: FP
        # passes DTC (so no FP) but covers too little: TP 0, FP 0 -> precision taken as 1
        ([(4.0, 8.0)], 0.1, 0.6, (0.0, 1.0, 0.0)),
        # 3-5 s: entirely inside (DTC 1) but covers 2/4 = 0.5
        ([(3.0, 5.0)], 0.7, 0.7, (0.0, 1.0, 0.0)),
        ([(3.0, 5.0)], 0.7, 0.5, (1.0, 1.0, 1.0)),
        # 1-7 s: covers all (GTC 1) but only 4/6 = 0.667 inside
        ([(1.0, 7.0)], 0.7, 0.7, (0.0, 0.0, 0.0)),
        ([(1.0, 7.0)], 0.6, 0.7, (1.0, 1.0, 1.0)),
        # two fragments 2-3.5 and 4.5-6: each inside (DTC 1), together cover 3/4 = 0.75
        ([(2.0, 3.5), (4.5, 6.0)], 0.7, 0.7, (1.0, 1.0, 1.0)),
        ([(2.0, 3.5), (4.5, 6.0)], 0.7, 0.8, (0.0, 1.0, 0.0)),
    ],
)
def test_f1_dtc_gtc_hand_computed(est, dtc, gtc, expected):
    ref = [("a", 2.0, 6.0, "dog")]
    r = intersection_f1(ref, [("a", on, off, "dog") for on, off in est], ["dog"], ["a"], 10.0, dtc, gtc)
    assert _cw(r, "dog") == pytest.approx(expected)
    assert (r["f_measure"], r["precision"], r["recall"]) == pytest.approx(expected)
    assert r["class_wise"]["dog"]["n_sys"] == len(est)


def test_f1_one_detection_over_two_references_counts_both():
    # dog 2-4 s and 5-7 s; one detection 2-7 s: 4 of its 5 s inside dog (0.8 >= 0.7),
    # covers both references fully -> TP 2, FP 0.
    ref = [("a", 2.0, 4.0, "dog"), ("a", 5.0, 7.0, "dog")]
    r = intersection_f1(ref, [("a", 2.0, 7.0, "dog")], ["dog"], ["a"], 10.0)
    assert r["class_wise"]["dog"] == dict(f_measure=1.0, precision=1.0, recall=1.0, n_ref=2, n_sys=1,
                                          n_tp=2, n_fp=0)


def test_f1_class_wise_macro_and_micro():
    # dog detected exactly; cat (6-8 s) never detected, plus a dog FP at 8.5-9.5 s.
    # dog: TP 1, FP 1 -> P 1/2, R 1, F 2/3.  cat: TP 0, FP 0 -> P 1 (no detection), R 0, F 0.
    # macro: F (2/3 + 0) / 2 = 1/3, P (1/2 + 1) / 2 = 3/4, R (1 + 0) / 2 = 1/2.
    # micro: TP 1, FP 1, Nref 2 -> P 1/2, R 1/2, F 1/2.
    est = [("a", 2.0, 5.0, "dog"), ("a", 8.5, 9.5, "dog")]
    r = intersection_f1(REF, est, CL, ["a"], 10.0)
    assert _cw(r, "dog") == pytest.approx((2 / 3, 0.5, 1.0))
    assert _cw(r, "cat") == pytest.approx((0.0, 1.0, 0.0))
    assert (r["f_measure"], r["precision"], r["recall"]) == pytest.approx((1 / 3, 0.75, 0.5))
    assert r["class_wise_average"] == pytest.approx({"f_measure": 1 / 3, "precision": 0.75, "recall": 0.5})
    assert r["micro"] == pytest.approx({"f_measure": 0.5, "precision": 0.5, "recall": 0.5})
    assert (r["n_tp"], r["n_fp"], r["n_sys"], r["n_ref"]) == (1, 1, 2, 2)


def test_f1_estimated_events_overlapping_or_past_the_clip_end():
    # Overlapping / touching estimated dog events are one detection (their union 2-5 s);
    # a zero-length event detects nothing; an offset past the 10 s end is cut to 10 s.
    est = [("a", 2.0, 3.5, "dog"), ("a", 3.0, 4.0, "dog"), ("a", 4.0, 5.0, "dog"),
           ("a", 9.0, 9.0, "dog"), ("a", 6.0, 12.0, "cat")]
    r = intersection_f1(REF, est, CL, ["a"], 10.0)
    assert r["class_wise"]["dog"]["n_sys"] == 1 and _cw(r, "dog") == (1.0, 1.0, 1.0)
    # cat: 6-10 s, 2 of 4 s inside (DTC 0.5 < 0.7) -> FP
    assert r["class_wise"]["cat"]["n_fp"] == 1 and _cw(r, "cat") == (0.0, 0.0, 0.0)


def test_f1_class_without_references_is_nan_and_left_out_of_the_macro():
    est = [("a", 2.0, 5.0, "dog"), ("a", 1.0, 2.0, "bird")]
    with pytest.warns(UserWarning, match="bird"):
        r = intersection_f1([("a", 2.0, 5.0, "dog")], est, ["dog", "bird"], ["a"], 10.0)
    assert math.isnan(r["class_wise"]["bird"]["f_measure"]) and math.isnan(r["class_wise"]["bird"]["recall"])
    assert r["class_wise"]["bird"]["precision"] == 0.0 and r["class_wise"]["bird"]["n_fp"] == 1
    assert r["f_measure"] == 1.0  # macro over dog only
    # micro: TP 1, FP 1 (the bird detection), Nref 1 -> P 0.5, R 1, F 2/3
    assert r["micro"] == pytest.approx({"f_measure": 2 / 3, "precision": 0.5, "recall": 1.0})


def test_f1_from_scores_thresholds_and_frame_convention():
    # 1 s frames: dog 0.9 on 2-5 s, 0.4 on 5-6 s; reference dog 2-6 s (4 s).
    s = np.zeros((1, 10, 1))
    s[0, 2:5, 0], s[0, 5, 0] = 0.9, 0.4
    ref = [("a", 2.0, 6.0, "dog")]
    run = lambda t, **kw: intersection_f1_from_scores(ref, s, ["dog"], ["a"], 10.0, t, **ONE, **kw)  # noqa: E731
    assert run(0.3)["f_measure"] == 1.0  # detection 2-6 s
    assert run(0.5)["f_measure"] == 1.0  # detection 2-5 s covers 3/4 = 0.75 >= 0.7
    assert run(0.5, gtc_threshold=0.8)["f_measure"] == 0.0
    assert run(0.9)["f_measure"] == 0.0  # strictly above the threshold: nothing detected
    assert run({"dog": 0.3})["f_measure"] == run([0.3])["f_measure"] == 1.0
    # Equals intersection_f1 on the events frames_to_events cuts at the same threshold.
    ev = frames_to_events(s, ["dog"], threshold=0.5, filenames=["a"], **ONE)
    assert intersection_f1(ref, ev, ["dog"], ["a"], 10.0) == run(0.5)


# --------------------------------------------------------------------------
# cross-checks against sed_scores_eval called directly, and against psds_eval
# --------------------------------------------------------------------------
def _random_case(seed, n_files=4, durations=(120.0, 90.0, 150.0, 60.0), grid=0.01):
    """Sparse non-overlapping reference events on a time grid, and noisy frame scores."""
    rng = np.random.default_rng(seed)
    classes = ["dog", "cat", "bird"]
    files = [f"f{i}.wav" for i in range(n_files)]
    dur = dict(zip(files, durations))
    ref = []
    for f in files:
        for c in classes:
            t = 0.0
            while True:
                on = round((t + rng.uniform(5, 30)) / grid) * grid
                off = round((on + rng.uniform(0.5, 4)) / grid) * grid
                if off > dur[f]:
                    break
                ref.append((f, on, off, c))
                t = off
    return rng, classes, files, dur, ref


def test_intersection_f1_matches_sed_scores_eval_on_a_grid():
    # Events on a 0.01 s grid; the direct call gets 0/1 scores on 0.01 s frames built here
    # independently of skattloc.sed_scores.
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    rng, classes, files, dur, ref = _random_case(1, durations=(30.0, 20.0, 25.0, 15.0))
    est = [(f, max(0.0, round(on + rng.uniform(-1, 1), 2)), round(off + rng.uniform(-1, 1), 2), c)
           for f, on, off, c in ref if rng.uniform() < 0.8]
    est = [(f, on, min(off, dur[f]), str(rng.choice(classes)) if rng.uniform() < 0.15 else c)
           for f, on, off, c in est if off > on]
    est = [e for i, e in enumerate(est)  # keep same-class estimated events disjoint
           if not any(o[0] == e[0] and o[3] == e[3] and o[1] <= e[2] and e[1] <= o[2] for o in est[:i])]
    scores, grids = {}, {}
    for f in files:
        n = int(round(dur[f] / 0.01))
        g = np.zeros((n, len(classes)))
        for ff, on, off, c in est:
            if ff == f:
                g[int(round(on / 0.01)):int(round(off / 0.01)), classes.index(c)] = 1.0
        grids[f] = g
        scores[f] = create_score_dataframe(g, np.round(np.arange(n + 1) * 0.01, 2), classes)
    gt = {f: [(on, off, c) for ff, on, off, c in ref if ff == f] for f in files}
    for dtc, gtc in ((0.7, 0.7), (0.5, 0.5), (0.2, 0.6)):
        fs, ps, rs, _ = sse.intersection_based.fscore(scores, gt, 0.5, dtc_threshold=dtc, gtc_threshold=gtc)
        r = intersection_f1(ref, est, classes, files, dur, dtc, gtc)
        assert r["f_measure"] == pytest.approx(fs["macro_average"])
        assert r["precision"] == pytest.approx(ps["macro_average"])
        assert r["recall"] == pytest.approx(rs["macro_average"])
        for c in classes:
            assert _cw(r, c) == pytest.approx((fs[c], ps[c], rs[c]))
        r2 = intersection_f1_from_scores(ref, [grids[f] for f in files], classes, files, dur,
                                         timing=(0.01, 0.0), dtc_threshold=dtc, gtc_threshold=gtc)
        assert r2["f_measure"] == pytest.approx(r["f_measure"])
    assert 0.2 < r["f_measure"] < 0.95  # the case is not trivial


def test_psds_matches_sed_scores_eval_with_default_frames():
    # Default 16 ms frames: 625 frames end at 0.008 + 625 * 0.016 = 10.008 s, clipped to
    # the 10 s clip; frame 0 is extended back to 0 s.
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    rng = np.random.default_rng(3)
    files, classes = ["x.wav", "y.wav"], ["dog", "cat"]
    clips = [rng.uniform(size=(625, 2)) for _ in files]
    ref = [("x.wav", 1.0, 2.5, "dog"), ("x.wav", 5.0, 9.0, "cat"), ("y.wav", 0.0, 3.0, "cat"),
           ("y.wav", 6.2, 6.9, "dog")]
    ts = 0.008 + 0.016 * np.arange(626)
    ts[0], ts[-1] = 0.0, 10.0
    direct = {f: create_score_dataframe(c, ts, classes) for f, c in zip(files, clips)}
    gt = {f: [(on, off, c) for ff, on, off, c in ref if ff == f] for f in files}
    for k in (1, 2):
        p = dict(PSDS_SCENARIOS[k])
        expected = sse.intersection_based.psds(direct, gt, {f: 10.0 for f in files}, **p)[0]
        assert psds(ref, np.stack(clips), classes, files, 10.0, scenario=k, timing=T) == pytest.approx(expected)
    dfs = scores_to_dataframes(np.stack(clips), classes, files, durations=10.0, timing=T)
    assert list(dfs) == files
    np.testing.assert_allclose(dfs["x.wav"].to_numpy(), direct["x.wav"].to_numpy())


class _NumpyForPsdsEval(types.ModuleType):
    """psds_eval 0.5.3 calls int(np.argwhere(...)) on a 2-D array, which NumPy 2 rejects."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def argwhere(a):
        return np.flatnonzero(a)[0]


def test_psds_and_f1_match_psds_eval(monkeypatch):
    # psds_eval (the DCASE 2020-2021 tool) approximates the PSD-ROC from operating points;
    # with scores on 6 levels, the 6 thresholds between them (and below the lowest, where
    # sed_scores_eval's all-active point lies) give every point of the exact ROC.  Event
    # times are not on a grid so that no intersection ratio ties with a criterion exactly
    # (sed_scores_eval rounds ratios to 6 decimals before comparing, psds_eval does not).
    pd = pytest.importorskip("pandas")
    psds_mod = pytest.importorskip("psds_eval.psds")
    monkeypatch.setattr(psds_mod, "np", _NumpyForPsdsEval("numpy"))
    from scipy.ndimage import uniform_filter1d

    rng, classes, files, dur, ref = _random_case(0, grid=1e-9)
    hop, clips = 0.2, []
    for f in files:
        n = int(round(dur[f] / hop))
        tc = (np.arange(n) + 0.5) * hop
        s = np.zeros((n, 3))
        for ff, on, off, c in ref:
            shift = rng.uniform(-0.4, 0.4)
            if ff == f:
                s[(tc >= on + shift) & (tc < off + shift), classes.index(c)] = rng.uniform(0.5, 1)
        s = 0.8 * s + 0.4 * s[:, [1, 2, 0]] * rng.uniform(size=(1, 3)) + rng.uniform(0, 0.35, size=s.shape)
        clips.append(np.round(np.clip(uniform_filter1d(s, 3, axis=0), 0, 1) * 5) / 5)
    cols = ["filename", "onset", "offset", "event_label"]
    gt = pd.DataFrame(ref, columns=cols)
    meta = pd.DataFrame({"filename": files, "duration": [dur[f] for f in files]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas FutureWarnings from psds_eval
        for k in (1, 2):
            p = dict(PSDS_SCENARIOS[k])
            ev = psds_mod.PSDSEval(p["dtc_threshold"], p["gtc_threshold"], p["cttc_threshold"] or 0.3,
                                   ground_truth=gt, metadata=meta)
            for th in (-0.1, 0.1, 0.3, 0.5, 0.7, 0.9):
                det = frames_to_events(clips, classes, timing=(hop, 0.0), threshold=th, filenames=files)
                ev.add_operating_point(pd.DataFrame(det, columns=cols))
            expected = ev.psds(alpha_ct=p["alpha_ct"], alpha_st=p["alpha_st"], max_efpr=p["max_efpr"]).value
            got = psds(ref, clips, classes, files, dur, scenario=k, timing=(hop, 0.0))
            assert got == pytest.approx(expected, abs=1e-9)
            assert 0.05 < got < 0.99  # not a degenerate case
        det = frames_to_events(clips, classes, timing=(hop, 0.0), threshold=0.5, filenames=files)
        for d in (0.3, 0.7):
            ev = psds_mod.PSDSEval(d, d, 0.3, ground_truth=gt, metadata=meta)
            f_avg, f_cls = ev.compute_macro_f_score(pd.DataFrame(det, columns=cols))
            r = intersection_f1(ref, det, classes, files, dur, d, d)
            assert r["f_measure"] == pytest.approx(f_avg)
            assert {c: r["class_wise"][c]["f_measure"] for c in classes} == pytest.approx(f_cls)


# --------------------------------------------------------------------------
# frame placement, reference handling, input checks
# --------------------------------------------------------------------------
def test_scores_to_dataframes_clips_frames_to_the_clip():
    s = np.arange(20, dtype=float).reshape(1, 10, 2) / 20
    # defaults: frame i covers [0.008 + 0.016 i, 0.024 + 0.016 i)
    df = scores_to_dataframes(s, CL, ["a"], timing=T)["a"]
    assert df["onset"].iloc[0] == 0.0 and df["offset"].iloc[-1] == pytest.approx(0.168)
    df = scores_to_dataframes(s, CL, ["a"], durations=0.17, timing=T)["a"]  # 2 ms short: stretched
    assert len(df) == 10 and df["offset"].iloc[-1] == 0.17
    df = scores_to_dataframes(s, CL, ["a"], durations=0.1, timing=T)["a"]  # frames from 0.104 s dropped
    assert len(df) == 6 and df["offset"].iloc[-1] == 0.1
    np.testing.assert_array_equal(df[CL].to_numpy(), s[0, :6])
    # frames before 0 s (a negative offset) no longer exist: FrameTiming refuses them
    with pytest.raises(ValueError, match="offset_s must be >= 0"):
        scores_to_dataframes(s, CL, ["a"], timing=(0.016, -0.02))
    with pytest.raises(ValueError, match="more than one hop .* before the end"):
        scores_to_dataframes(s, CL, ["a"], durations=0.5, timing=T)
    with pytest.raises(ValueError, match="more than one hop .* after the start"):
        scores_to_dataframes(s, CL, ["a"], timing=(0.016, 0.05))


def test_overlapping_references_are_merged():
    # domestic-mix has overlapping same-class reference events; sed_scores_eval refuses
    # them, so 2-4 s, 3-5 s and 5-6 s (touching) become one dog event 2-6 s.
    ref = [("a", 2.0, 4.0, "dog"), ("a", 3.0, 5.0, "dog"), ("a", 5.0, 6.0, "dog"), ("a", 6.0, 8.0, "cat")]
    r = intersection_f1(ref, [("a", 2.0, 6.0, "dog")], CL, ["a"], 10.0)
    assert r["class_wise"]["dog"]["n_ref"] == 1 and _cw(r, "dog") == (1.0, 1.0, 1.0)
    s = np.zeros((1, 10, 2))
    s[0, 2:6, 0], s[0, 6:8, 1] = 1.0, 1.0
    assert psds(ref, s, CL, ["a"], 10.0, **ONE) == pytest.approx(1.0)
    # A reference offset past the clip end is cut to it: cat 6-12 s becomes 6-10 s, which
    # scores on 6-10 s detect exactly (without the cut, GTC 4/6 < 0.7 would miss it).
    s[0, 6:10, 1] = 1.0
    ref = [("a", 2.0, 6.0, "dog"), ("a", 6.0, 12.0, "cat")]
    assert psds(ref, s, CL, ["a"], 10.0, **ONE) == pytest.approx(1.0)


def test_durations_forms():
    s = [np.zeros((10, 1)), np.zeros((5, 1))]
    ref = [("a", 1.0, 2.0, "dog")]
    base = psds(ref, s, ["dog"], ["a", "b"], {"a": 10.0, "b": 5.0, "unused": 3.0}, **ONE)
    assert psds(ref, s, ["dog"], ["a", "b"], [10.0, 5.0], **ONE) == base
    assert psds(ref, s, ["dog"], ["a", "b"], np.array([10, 5]), **ONE) == base


_S = np.full((1, 10, 2), 0.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(frame_scores=np.full((1, 10, 3), 0.5)), r"3 class columns but classes has 2"),
        (dict(frame_scores=np.where(np.arange(20).reshape(1, 10, 2) == 3, np.nan, 0.5)), "NaN or infinite"),
        (dict(frame_scores=np.full((1, 10, 2), np.inf)), "NaN or infinite"),
        (dict(frame_scores=np.full((2, 10, 2), 0.5)), "2 clips but filenames has 1"),
        (dict(frame_scores=np.zeros((10,))), "shape"),
        (dict(frame_scores=[]), "Empty input"),
        (dict(frame_scores=[np.zeros((0, 2))]), "no frames"),
        (dict(filenames=[]), "Empty input: filenames"),
        (dict(filenames="a"), "sequence of file names"),
        (dict(filenames=["a", "a"], frame_scores=np.full((2, 10, 2), 0.5)), "duplicates"),
        (dict(classes=["dog", "dog"]), "duplicate"),
        (dict(classes=["dog", "onset"]), "'onset'"),
        (dict(ref_events=[("a", 1.0, 2.0, "cow")]), "'cow', which is not in classes"),
        (dict(ref_events=[("b", 1.0, 2.0, "dog")]), "'b', which is not in filenames"),
        (dict(ref_events=[("a", 3.0, 2.0, "dog")]), "0 <= onset < offset"),
        (dict(ref_events=[("a", 2.0, 2.0, "dog")]), "0 <= onset < offset"),
        (dict(ref_events=[("a", 10.0, 12.0, "dog")]), "starts at or after the end"),
        (dict(ref_events=[("a", 1.0, "x", "dog")]), "non-numeric"),
        (dict(ref_events=[("a", 1.0, 2.0)]), "must be a \\(filename"),
        (dict(ref_events=[("a", 1.0, 2.0, "dog")]), r"none of \['cat'\]"),
        (dict(durations={"b": 10.0}), "no entry for 1 file"),
        (dict(durations=[10.0, 5.0]), "2 values but filenames has 1"),
        (dict(durations=-1.0), "must be > 0"),
        (dict(durations=float("nan")), "finite number"),
        (dict(durations=None), "durations is required"),
        (dict(scenario=3), "scenario must be 1 or 2"),
        (dict(dtc=0.5), r"unknown PSDS parameter\(s\) \['dtc'\]"),
        (dict(alpha_ct=0.0), "cttc_threshold and alpha_ct go together"),
        (dict(dtc_threshold=1.5), r"dtc_threshold must be in \(0, 1\]"),
        (dict(max_efpr=0.0), "max_efpr must be > 0"),
        (dict(timing=(0.0, 0.0)), "hop_s must be > 0"),
    ],
)
def test_psds_input_errors(kwargs, match):
    args = dict(ref_events=REF, frame_scores=_S, classes=CL, filenames=["a"], durations=10.0,
                scenario=2, **ONE)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        psds(**args)


@pytest.mark.parametrize(
    "est, match",
    [
        ([("a", 1.0, 2.0, "cow")], "est_events\\[0\\] has event_label 'cow'"),
        ([("z", 1.0, 2.0, "dog")], "'z', which is not in filenames"),
        ([("a", -1.0, 2.0, "dog")], "0 <= onset <= offset"),
        ([("a", 11.0, 12.0, "dog")], "starts at or after the end"),
        ("a.tsv", "must be a list"),
    ],
)
def test_intersection_f1_input_errors(est, match):
    with pytest.raises(ValueError, match=match):
        intersection_f1(REF, est, CL, ["a"], 10.0)


def test_other_input_errors():
    with pytest.raises(ValueError, match="no events"):
        intersection_f1([], REF, CL, ["a"], 10.0)
    with pytest.raises(ValueError, match="threshold dict must have exactly one entry per class"):
        intersection_f1_from_scores(REF, _S, CL, ["a"], 10.0, {"dog": 0.5}, **ONE)
    with pytest.raises(ValueError, match="2 per-class values"):
        intersection_f1_from_scores(REF, _S, CL, ["a"], 10.0, [0.5, 0.5, 0.5], **ONE)
    with pytest.raises(ValueError, match=r"gtc_threshold must be in \(0, 1\]"):
        intersection_f1(REF, REF, CL, ["a"], 10.0, gtc_threshold=0.0)
    # dict events are accepted too
    evs = [dict(filename=f, onset=on, offset=off, event_label=c) for f, on, off, c in REF]
    assert intersection_f1(evs, evs, CL, ["a"], 10.0)["f_measure"] == 1.0


def test_missing_sed_scores_eval_raises_importerror_with_the_install_command(monkeypatch):
    for name in [m for m in sys.modules if m == "sed_scores_eval" or m.startswith("sed_scores_eval.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sed_scores_eval", None)  # import now fails
    with pytest.raises(ImportError, match=r'pip install "skattloc\[psds\]"'):
        psds(REF, _perfect(), CL, ["a"], 10.0, **ONE)
    with pytest.raises(ImportError, match=r"skattloc\[psds\]"):
        intersection_f1(REF, REF, CL, ["a"], 10.0)
    assert sed_scores._sse_problem() == "sed_scores_eval is not installed"


def test_pandas_3_is_detected(monkeypatch):
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "3.0.0" if name == "pandas" else real(name))
    assert 'pandas<3' in sed_scores._sse_problem()
    monkeypatch.setattr(sed_scores, "_SSE_PROBLEM", sed_scores._sse_problem())
    with pytest.raises(ImportError, match="pandas"):
        psds(REF, _perfect(), CL, ["a"], 10.0, **ONE)


def test_docstring_examples_are_skipped_without_sed_scores_eval(monkeypatch):
    def f():
        """Doc.

        >>> 1 + 1
        2
        """

    monkeypatch.setattr(sed_scores, "_SSE_PROBLEM", "sed_scores_eval is not installed")
    assert "1 + 1  # doctest: +SKIP" in sed_scores._doctest_needs_sed_scores_eval(f).__doc__
