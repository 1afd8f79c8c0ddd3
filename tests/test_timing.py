"""Frame timing has one owner (issue 16): the extractor's FrameTiming, recorded by the tagger
whatever the route (a Pipeline, the CLI, features from elsewhere, a feature store), and read
by every answer in seconds. Each route runs with a non-default hop: 512 samples (32 ms), and
160 samples with n_fft=400 (10 ms)."""
import csv
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import soundfile as sf
from sklearn.pipeline import make_pipeline

from skattloc import AttLocTagger, LogMelExtractor, make_weak_events
from skattloc.timing import FrameArray, FrameList, FrameTiming, as_frame_timing, frame_timing_of

TINY = dict(rnn_hidden=8, rnn_layers=1, dense_units=8, n_filters=8, conv_blocks=2, max_epochs=1, random_state=0)
# every frame active, nothing smoothed away: one event per clip and class spanning all its frames
ALL_ACTIVE = dict(threshold=0.0, threshold_low=0.0, clip_threshold=False, median_filter=0.0, min_gap=0.0, min_duration=0.0)
EXTRACTORS = {
    "hop512": dict(hop_length=512),  # 32 ms, frame 0 from 0 s
    "hop160": dict(hop_length=160, n_fft=400),  # 10 ms, frame 0 from 7.5 ms
}


@pytest.fixture(scope="module")
def audio():
    audio, Y, _ = make_weak_events(n_clips=24, n_classes=2, duration=1.0, random_state=0)
    return audio, Y


# ---------------------------------------------------------------------------- the record
def test_frame_timing_conversions():
    t = FrameTiming(0.032, 0.0)
    assert t.clip_duration(31) == pytest.approx(0.992)
    assert t.frame_edges(2).tolist() == pytest.approx([0.0, 0.032, 0.064])
    assert t.frame_times(2).tolist() == pytest.approx([0.016, 0.048])
    assert t.seconds_to_frames(0.32) == pytest.approx(10.0)
    assert FrameTiming.from_dict(t.to_dict()) == t


@pytest.mark.parametrize("key", sorted(EXTRACTORS))
def test_extractor_owns_the_timing_and_its_duration_agrees(key):
    ext = LogMelExtractor(**EXTRACTORS[key])
    t = ext.frame_timing
    assert t.hop_s == pytest.approx(ext.hop_length / ext.sr)
    for n in (1, 31, 98):
        assert t.clip_duration(n) == pytest.approx(ext.clip_duration(n))
    assert t.frame_times(5) == pytest.approx(ext.frame_times(5))


@pytest.mark.parametrize("bad, match", [((0, 0), "hop_s must be > 0"), ((-0.01, 0), "hop_s must be > 0"),
                                        ((0.01, -1), "offset_s must be >= 0"), ((float("nan"), 0), "finite"),
                                        ("16ms", "must be a FrameTiming")])
def test_bad_timings_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        as_frame_timing(bad)


def test_frames_carry_their_timing_through_indexing_and_pickling_but_not_arithmetic(audio):
    X = LogMelExtractor(hop_length=512).fit_transform(audio[0])
    assert isinstance(X, FrameArray) and X.frame_timing.hop_s == pytest.approx(0.032)
    assert frame_timing_of(X[3:7]) == X.frame_timing and frame_timing_of(X[[1, 2]]) == X.frame_timing
    assert frame_timing_of(pickle.loads(pickle.dumps(X))) == X.frame_timing
    assert frame_timing_of(X + 1) is None and type(X.sum()) is np.float32
    ragged = LogMelExtractor(hop_length=512).fit_transform([audio[0][0], audio[0][1][:8000]])
    assert isinstance(ragged, FrameList) and frame_timing_of(ragged[:1]) == X.frame_timing
    assert frame_timing_of(pickle.loads(pickle.dumps(ragged))) == X.frame_timing


# ---------------------------------------------------------------------------- the routes
@pytest.mark.parametrize("key", sorted(EXTRACTORS))
def test_pipeline_tagger_records_its_extractors_timing_and_answers_in_it(audio, key):
    ext = LogMelExtractor(**EXTRACTORS[key])
    pipe = make_pipeline(ext, AttLocTagger(**TINY)).fit(*audio)
    tagger, X = pipe[-1], pipe[0].transform(audio[0][:3])
    assert tagger.frame_timing_.matches(ext.frame_timing)
    n_frames = X.shape[1]
    ev = tagger.detect_events(X, filenames=["a", "b", "c"], **ALL_ACTIVE)
    # every clip's events span all its frames: from frame 0's span start to the last span's end
    assert {round(on, 6) for _, on, _, _ in ev} == {round(ext.frame_offset_seconds, 6)}
    assert {round(off, 6) for _, _, off, _ in ev} == {round(ext.frame_offset_seconds + n_frames * ext.hop_seconds, 6)}
    assert max(off for _, _, off, _ in ev) > 0.9  # 1 s clips: never cut at the default hop's 0.5 s


def test_fit_calibrates_the_event_settings_with_the_features_timing(audio):
    from skattloc.inference import frame_scores
    from skattloc.postprocessing import EventPostprocessor

    ext = LogMelExtractor(hop_length=512)
    X = ext.fit_transform(audio[0])
    tagger = AttLocTagger(**TINY, validation_fraction=0.25).fit(X, audio[1])
    assert tagger.event_settings_["source"] == "weak"
    val = tagger.validation_indices_
    frames, clip = frame_scores(tagger, X[val])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = EventPostprocessor.calibrate(frames, clip, audio[1][val], ["0", "1"], timing=ext.frame_timing)
        wrong = EventPostprocessor.calibrate(frames, clip, audio[1][val], ["0", "1"], timing=LogMelExtractor().frame_timing)
    assert tagger.event_settings_ == expected.to_dict()
    assert tagger.event_settings_ != wrong.to_dict()


def test_features_from_elsewhere_take_the_timing_once_at_construction(audio):
    X = np.asarray(LogMelExtractor(hop_length=160, n_fft=400).fit_transform(audio[0]))  # a plain array: no timing
    assert frame_timing_of(X) is None
    tagger = AttLocTagger(**TINY, frame_timing=(0.01, 0.0075)).fit(X, audio[1])
    assert tagger.frame_timing_ == FrameTiming(0.01, 0.0075)
    ev = tagger.detect_events(X[:2], filenames=["a", "b"], **ALL_ACTIVE)
    assert {round(off, 6) for _, _, off, _ in ev} == {round(0.0075 + X.shape[1] * 0.01, 6)}
    assert tagger.event_scores(X[:2]).shape == (2, X.shape[1], 2)


def test_without_a_timing_answers_in_seconds_are_refused_never_guessed(audio):
    X = np.asarray(LogMelExtractor(hop_length=512).fit_transform(audio[0]))
    with pytest.warns(UserWarning, match="frame timing is unknown"):
        tagger = AttLocTagger(**TINY, validation_fraction=0.25).fit(X, audio[1])
    assert tagger.frame_timing_ is None and tagger.event_settings_["source"] == "default"
    assert tagger.localize(X).shape[:2] == X.shape[:2]  # frames need no timing
    for call in (lambda: tagger.detect_events(X), lambda: tagger.event_scores(X),
                 lambda: tagger.tune_events(X, audio[1])):
        with pytest.raises(ValueError, match="does not know the frame timing"):
            call()
    tagger.set_params(frame_timing=LogMelExtractor(hop_length=512))  # told later: it answers
    assert max(off for _, _, off, _ in tagger.detect_events(X[:1], **ALL_ACTIVE)) == pytest.approx(0.992)


def test_contradicting_timings_are_refused(audio):
    X = LogMelExtractor(hop_length=512).fit_transform(audio[0])
    with pytest.raises(ValueError, match="frame_timing says hop 10 ms"):
        AttLocTagger(**TINY, frame_timing=0.01).fit(X, audio[1])
    tagger = AttLocTagger(**TINY).fit(X, audio[1])
    X16 = LogMelExtractor(n_mels=40).fit_transform(audio[0][:2])  # the default 16 ms hop
    with pytest.raises(ValueError, match="fitted on frames with hop 32 ms"):
        tagger.predict_proba(X16)
    with pytest.raises(ValueError, match="contradicts the timing of the training features"):
        tagger.set_params(frame_timing=0.016).detect_events(X)


@pytest.mark.parametrize("kind", ["store", "audio"])
def test_feature_store_and_audio_features_carry_the_timing(tmp_path, audio, kind):
    from skattloc import AudioFeatures, FeatureStore

    ext = LogMelExtractor(hop_length=160, n_fft=400)
    paths = []
    for i, y in enumerate(audio[0]):
        paths.append(tmp_path / f"c{i}.wav")
        sf.write(paths[-1], y, 16000)
    X = FeatureStore.from_audio(tmp_path / "store", paths, ext) if kind == "store" else AudioFeatures(paths, ext)
    assert X.frame_timing.matches(ext.frame_timing) and X[2:5].frame_timing.matches(ext.frame_timing)
    tagger = AttLocTagger(**TINY).fit(X, audio[1])
    assert tagger.frame_timing_.matches(ext.frame_timing)


def test_model_file_keeps_the_timing(tmp_path, audio):
    pipe = make_pipeline(LogMelExtractor(hop_length=512), AttLocTagger(**TINY)).fit(*audio)
    loaded = AttLocTagger.load(pipe[-1].save(tmp_path / "m.skattloc"))
    assert loaded.frame_timing_.matches(pipe[-1].frame_timing_)
    X = pipe[0].transform(audio[0][:3])
    assert loaded.detect_events(X, **ALL_ACTIVE) == pipe[-1].detect_events(X, **ALL_ACTIVE)


def test_cli_fit_records_the_timing_of_its_extractor(tmp_path, audio):
    """``skattloc fit --sr 8000``: the default 256-sample hop is 32 ms at 8 kHz."""
    data = tmp_path / "data"
    (data / "audio").mkdir(parents=True)
    with open(data / "weak.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "tags"])
        for i, (y, tags) in enumerate(zip(audio[0], audio[1])):
            sf.write(data / "audio" / f"c{i:02d}.wav", y, 16000)
            w.writerow([f"c{i:02d}.wav", ",".join(f"t{k}" for k in np.flatnonzero(tags))])
    out = tmp_path / "m.skattloc"
    proc = subprocess.run(
        [sys.executable, "-m", "skattloc", "fit", str(data), "-o", str(out), "--sr", "8000", "--quiet",
         "--param", "max_epochs=1", "--param", "rnn_hidden=8", "--param", "rnn_layers=1", "--param", "dense_units=8",
         "--param", "validation_fraction=0"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert AttLocTagger.load(out).frame_timing_.matches(LogMelExtractor(sr=8000).frame_timing)


# ---------------------------------------------------------------------------- issue 17, item 11
def test_no_hop_argument_left_to_get_wrong(audio):
    X = LogMelExtractor(hop_length=512).fit_transform(audio[0])
    tagger = AttLocTagger(**TINY).fit(X, audio[1])
    with pytest.raises(ValueError, match="unknown event setting 'hop_s'"):  # was: hop_s=0 -> OverflowError, <0 -> []
        tagger.detect_events(X, hop_s=0)
    for bad in (0, -0.016):
        with pytest.raises(ValueError, match="hop_s must be > 0"):
            tagger.set_params(frame_timing=bad)._validate_params()


def test_tune_events_refuses_an_empty_reference(audio):
    X = LogMelExtractor().fit_transform(audio[0])
    tagger = AttLocTagger(**TINY).fit(X, audio[1])
    with pytest.raises(ValueError, match=r"reference=\[\]\) has no events"):
        tagger.tune_events(X, reference=[], filenames=[f"c{i}" for i in range(len(X))])


# ---------------------------------------------------------------------------- issue 17, item 9 (the API)
def test_resume_refuses_another_seed_or_fewer_epochs_than_done(audio, tmp_path):
    X = LogMelExtractor().fit_transform(audio[0])
    AttLocTagger(**{**TINY, "max_epochs": 2}, checkpoint_dir=tmp_path).fit(X, audio[1])
    with pytest.raises(ValueError, match="trains with seed 0, but random_state=5"):
        AttLocTagger(**{**TINY, "max_epochs": 3, "random_state": 5}, checkpoint_dir=tmp_path, resume=True).fit(X, audio[1])
    with pytest.raises(ValueError, match="has finished 2 epochs, more than max_epochs=1"):
        AttLocTagger(**TINY, checkpoint_dir=tmp_path, resume=True).fit(X, audio[1])
    resumed = AttLocTagger(**{**TINY, "max_epochs": 3, "random_state": None}, checkpoint_dir=tmp_path, resume=True)
    assert resumed.fit(X, audio[1]).n_epochs_ == 3
