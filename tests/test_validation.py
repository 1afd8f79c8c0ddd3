"""Bad input gets a clear error, and nothing is silently wrong (issue 5).

One test per failure mode: each asserts the exception type and that the message names the
problem and what was expected. Cases already covered elsewhere are listed, not repeated:
missing/corrupt/header-only-empty/NaN audio files, resample-or-refuse and stereo downmix in
tests/test_features.py; NotFittedError for predict_proba/predict/localize/frame_outputs and
warm-start class mismatch in tests/test_estimator.py.
"""
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline

from skattloc import AttLocTagger, AudioLoadError, LogMelExtractor, load_audio
from skattloc.module import NonFiniteLossError

# The paper's per-frame CNN (its kernel_size is what several checks below are about).
TINY = dict(frontend="frame_cnn", time_pool=1, n_filters=4, kernel_size=3, rnn_hidden=4, rnn_layers=1, dense_units=4,
            batch_size=8, max_epochs=1, random_state=0)
N, T, F = 16, 10, 8


def _data(n=N, t=T, f=F, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, t, f)).astype(np.float32)
    Y = (np.arange(n)[:, None] % np.array([2, 3]) == 0).astype(int)  # both classes mixed
    return X, Y


@pytest.fixture(scope="module")
def tiny():
    X, Y = _data()
    return AttLocTagger(**TINY).fit(X, Y)


# ------------------------------------------------------------------ X
@pytest.mark.parametrize(
    "X, exc, match",
    [
        (np.zeros((N, T)), ValueError, r"must be 3-D \(n_clips, n_frames, n_features\).*2 dimension"),
        (np.zeros((N, T, F, 2)), ValueError, r"must be 3-D .*4 dimension"),
        (np.zeros(5), ValueError, r"must be 3-D .*1 dimension"),
        ([np.zeros(T)] * N, ValueError, r"X\[0\] must be a 2-D \(n_frames, n_features\) array"),
        (np.zeros((0, T, F)), ValueError, r"X is empty: got 0 clips; at least 1 clip is required"),
        ([], ValueError, r"X is empty: got 0 clips"),
        (np.zeros((N, 0, F)), ValueError, r"X\[0\] has zero frames; every clip needs at least 1 frame"),
        ([np.zeros((T, F))] * 3 + [np.zeros((0, F))], ValueError, r"X\[3\] has zero frames"),
        (np.zeros((N, T, 0)), ValueError, r"0 feature\(s\).*minimum of 3 is required"),
        ([np.zeros((T, F)), np.zeros((T, F + 1))], ValueError, r"same number of features per frame; got \[8, 9\]"),
        (np.full((N, T, F), "a"), TypeError, r"X must hold real numbers; got dtype <U1"),
        (np.zeros((N, T, F), dtype=complex), ValueError, r"Complex data not supported.*real numbers"),
        (["a.wav", "b.wav"], TypeError, r"X\[0\] is a string.*log-mel frames.*LogMelExtractor"),
        (None, TypeError, r"X must be log-mel frames \(a 3-D array or a list of 2-D arrays\), got NoneType"),
        ("clips.npy", TypeError, r"must be log-mel frames .* got str"),
        (42, TypeError, r"X must be a 3-D array or a list of 2-D arrays, got int"),
    ],
    ids=["2d", "4d", "1d", "list-of-1d", "empty", "empty-list", "zero-frames", "zero-frames-list",
         "zero-features", "ragged-features", "strings", "complex", "paths", "none", "str", "int"],
)
def test_bad_X_in_fit(X, exc, match):
    with pytest.raises(exc, match=match):
        AttLocTagger(**TINY).fit(X, np.ones((len(X) if hasattr(X, "__len__") and not isinstance(X, str) else 1, 2)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_X(bad):
    X, Y = _data()
    X[5, 3, 2] = bad
    with pytest.raises(ValueError, match=r"X contains NaN or Inf in 1 clip\(s\) \(first: index 5\); features must be finite"):
        AttLocTagger(**TINY).fit(X, Y)


def test_finite_float64_that_overflows_float32_is_caught():
    X, Y = _data()
    X = X.astype(np.float64)
    X[2, 0, 0] = 1e300  # finite in float64, Inf once converted to float32
    with pytest.raises(ValueError, match=r"NaN or Inf in 1 clip\(s\) \(first: index 2\)"):
        AttLocTagger(**TINY).fit(X, Y)


def test_fewer_mel_bins_than_the_kernel():
    X, Y = _data(f=2)
    with pytest.raises(ValueError, match=r"2 features \(mel bins\) per frame, fewer than the CNN kernel size 3; use more mel bands or a smaller kernel_size"):
        AttLocTagger(**TINY).fit(X, Y)


def test_n_features_at_predict_differs_from_fit(tiny):
    X, _ = _data(f=F + 1)
    for method in ("predict_proba", "predict", "localize", "frame_outputs"):
        with pytest.raises(ValueError, match=r"X has 9 features, but AttLocTagger is expecting 8 features as input"):
            getattr(tiny, method)(X)


def test_bad_X_at_predict_is_checked_like_in_fit(tiny):
    X, _ = _data()
    X[1, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        tiny.predict_proba(X)
    with pytest.raises(ValueError, match="is empty"):
        tiny.predict_proba(np.zeros((0, T, F)))


def test_input_far_outside_the_training_range_never_gives_nan(tiny):
    X, _ = _data()
    X[0] = 3e38  # finite float32, but it overflows inside the network
    with pytest.raises(ValueError, match=r"output is NaN or Inf for 1 clip\(s\) \(first: index 0\).*outside the range seen in fit"):
        tiny.predict_proba(X)
    assert np.isfinite(tiny.predict_proba(X[1:])).all()


# ------------------------------------------------------------------ Y
def test_y_row_count_differs_from_X():
    X, Y = _data()
    with pytest.raises(ValueError, match=r"X has 16 clips but Y has 15 rows; they must match"):
        AttLocTagger(**TINY).fit(X, Y[:-1])
    with pytest.raises(ValueError, match=r"X has 16 clips but Y has 17 rows"):
        AttLocTagger(**TINY).fit(X, [["a"]] * 17)


@pytest.mark.parametrize(
    "value, kind",
    [(2, "multiclass"), (-1, "multiclass"), (0.5, "continuous"), (np.nan, "continuous")],
)
def test_y_values_other_than_0_1(value, kind):
    X, Y = _data()
    Y = Y.astype(float)
    Y[3, 1] = value
    with pytest.raises(ValueError, match=rf"Unknown label type: {kind}\. Y must be a 0/1 indicator matrix"):
        AttLocTagger(**TINY).fit(X, Y)


def test_y_shape_and_none():
    X, Y = _data()
    with pytest.raises(ValueError, match=r"Y must be 2-D \(n_clips, n_classes\), got a 1-D array.*reshape\(-1, 1\)"):
        AttLocTagger(**TINY).fit(X, Y[:, 0])
    with pytest.raises(ValueError, match=r"requires y to be passed.*0/1 matrix"):
        AttLocTagger(**TINY).fit(X, None)
    with pytest.raises(ValueError, match=r"Y must hold 0/1 values, got dtype <U1"):
        AttLocTagger(**TINY).fit(X, np.full((N, 2), "1"))
    # Found by tests/test_fuzz.py: zero classes used to train on an empty (NaN) loss.
    with pytest.raises(ValueError, match=r"Y has 0 columns \(shape \(16, 0\)\); at least 1 class is required"):
        AttLocTagger(**TINY).fit(X, np.zeros((N, 0)))
    with pytest.raises(ValueError, match=r"Y has no tag in any clip; at least 1 class is required"):
        AttLocTagger(**TINY).fit(X, [set()] * N)


def test_y_columns_differ_from_classes_when_refitting_or_scoring(tiny):
    X, Y = _data()
    warm = AttLocTagger(**TINY, warm_start=True).fit(X, Y)
    with pytest.raises(ValueError, match=r"Y has 3 columns but the model has 2 classes \(classes_=\[0, 1\]\); the columns must match classes_"):
        warm.fit(X, np.c_[Y, Y[:, :1]])
    with pytest.raises(ValueError, match=r"Y has 1 columns but the model has 2 classes"):
        tiny.score(X, Y[:, :1])
    # Without warm_start a refit starts anew, so new columns are fine (sklearn convention).
    assert len(AttLocTagger(**TINY).fit(X, Y).fit(X, np.c_[Y, 1 - Y[:, :1]]).classes_) == 3


@pytest.mark.parametrize("column, which, effect", [
    (0, "never positive", "always predict 0"),
    (1, "positive in every clip", "always predict 1"),
])
def test_class_never_or_always_positive_warns(column, which, effect):
    X, Y = _data()
    Y = Y.copy()
    Y[:, column] = 0 if which == "never positive" else 1
    with pytest.warns(UserWarning, match=rf"classes \[{column}\] (are )?{which}.*{effect}.*EER is undefined \(NaN, left out of the macro mean\)"):
        tagger = AttLocTagger(**TINY).fit(X, Y)
    assert np.isfinite(tagger.predict_proba(X)).all()


# ------------------------------------------------------------------ audio (gaps not in test_features)
def _wav(path, n=8000, sr=16000, channels=1):
    y = np.random.default_rng(0).normal(0, 0.1, (n, channels)).astype(np.float32)
    sf.write(path, y, sr, subtype="FLOAT")
    return path


def test_zero_byte_file_is_named_as_empty(tmp_path):
    path = tmp_path / "zero.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioLoadError, match=r"cannot read audio file .*zero\.wav.*empty \(0 bytes\); expected an audio file"):
        load_audio(path)


def test_directory_instead_of_a_file(tmp_path):
    with pytest.raises(AudioLoadError, match=r"cannot read audio file .*: it is a directory"):
        load_audio(tmp_path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path):
    path = _wav(tmp_path / "locked.wav")
    path.chmod(0)
    try:
        with pytest.raises(AudioLoadError, match=r"cannot read audio file .*locked\.wav"):
            load_audio(path)
    finally:
        path.chmod(0o644)


def test_header_without_samples_is_refused(tmp_path):
    path = tmp_path / "header.wav"
    path.write_bytes(_wav(tmp_path / "ok.wav").read_bytes()[:40])  # RIFF header, no data chunk
    with pytest.raises(AudioLoadError, match=r"cannot read audio file .*header\.wav.*soundfile"):
        load_audio(path)


def test_bad_file_inside_a_parallel_pipeline_names_the_file(tmp_path):
    paths = [str(_wav(tmp_path / f"c{i}.wav")) for i in range(4)]
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(np.random.default_rng(1).bytes(1024))
    paths[2] = str(bad)
    pipe = make_pipeline(LogMelExtractor(n_jobs=2), AttLocTagger(**TINY))
    with pytest.raises(AudioLoadError, match=r"corrupt\.wav"):
        pipe.fit(paths, np.eye(2, dtype=int)[[0, 1, 0, 1]])
    paths[2] = str(tmp_path / "missing.wav")
    with pytest.raises(FileNotFoundError, match=r"audio file not found: .*missing\.wav"):
        pipe.fit(paths, np.eye(2, dtype=int)[[0, 1, 0, 1]])


def test_other_rate_and_multichannel_files_are_resampled_and_downmixed(tmp_path):
    """Documented: files at another rate are resampled (resample=True) and channels averaged."""
    path = _wav(tmp_path / "quad.wav", n=11025, sr=22050, channels=4)
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    y = load_audio(path, sr=16000)
    assert y.shape == (8000,)
    import librosa

    expected = librosa.resample(data.mean(axis=1), orig_sr=22050, target_sr=16000, res_type="soxr_hq")
    np.testing.assert_allclose(y, expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"22050 Hz but 16000 Hz was expected; pass resample=True"):
        LogMelExtractor(resample=False).transform([path])


# ------------------------------------------------------------------ unfitted, parameters
def test_unfitted_estimator_everywhere(tmp_path):
    X, Y = _data()
    for call in (lambda t: t.score(X, Y), lambda t: t.predict_tags(X), lambda t: t.save(tmp_path / "m.skattloc")):
        with pytest.raises(NotFittedError, match=r"This AttLocTagger instance is not fitted yet.*Call 'fit'"):
            call(AttLocTagger())


BAD_PARAMS = [
    ("n_filters", 0, r"n_filters must be a positive int, got 0"),
    ("kernel_size", 2.5, r"kernel_size must be a positive int, got 2\.5"),
    ("rnn_hidden", -1, r"rnn_hidden must be a positive int"),
    ("rnn_layers", 0, r"rnn_layers must be a positive int"),
    ("dense_units", True, r"dense_units must be an int >= 0 \(0: no ReLU layer\), got True"),
    ("dense_units", -1, r"dense_units must be an int >= 0"),
    ("batch_size", 0, r"batch_size must be a positive int"),
    ("max_epochs", 0, r"max_epochs must be a positive int"),
    ("patience", -3, r"patience must be a positive int"),
    ("dropout", 1.0, r"dropout must be a number in \[0\.0, 1\.0\), got 1\.0"),
    ("dropout", np.nan, r"dropout must be a number in \[0\.0, 1\.0\)"),
    ("validation_fraction", -0.1, r"validation_fraction must be a number in \[0\.0, 1\.0\)"),
    ("threshold", 1.5, r"threshold must be a number in \[0\.0, 1\.0\], got 1\.5"),
    ("learning_rate", 0, r"learning_rate must be a finite number in \(0, 10\]"),
    ("learning_rate", np.inf, r"learning_rate must be a finite number in \(0, 10\]"),
    ("learning_rate", 1e38, r"learning_rate must be a finite number in \(0, 10\].*got 1e\+38"),
    ("learning_rate", "fast", r"learning_rate must be a finite number"),
    ("weight_decay", -1.0, r"weight_decay must be a finite number >= 0, got -1\.0"),
    ("weight_decay", np.nan, r"weight_decay must be a finite number >= 0, got nan"),
    ("num_workers", -1, r"num_workers must be an int >= 0"),
    ("num_workers", True, r"num_workers must be an int >= 0, got True"),
    ("pooling", "max", r"pooling must be one of \(.*'att_loc'.*\), got 'max'"),
    ("localization", "where", r"localization must be one of \(.*'paper'.*\), got 'where'"),
    ("trainer_kwargs", [("max_steps", 1)], r"trainer_kwargs must be a dict or None, got list"),
    ("callbacks", [1], r"callbacks must be None or a list of lightning.pytorch Callback objects"),
    ("logger", "tensorboard", r"logger must be True, False or a lightning.pytorch logger"),
    ("random_state", "seed", r"random_state must be None, an int or a numpy RandomState; got 'seed'"),
    ("checkpoint_dir", 3, r"checkpoint_dir must be None or a folder path \(str or os.PathLike\), got 3"),
    ("checkpoint_dir", "", r"checkpoint_dir must be None or a folder path"),
    ("resume", "yes", r"resume must be True or False, got 'yes'"),
    ("resume", True, r"resume=True needs checkpoint_dir"),
    ("keep_checkpoints", None, r"keep_checkpoints must be True or False, got None"),
    ("accelerator", "tpu2", r"invalid accelerator name"),
    ("devices", 0, r"invalid Lightning setting .*devices=0.*not a valid input"),
    ("precision", "17-ish", r"Precision '17-ish' is invalid"),
]


@pytest.mark.parametrize("name, value, match", BAD_PARAMS, ids=[f"{n}={v!r}" for n, v, _ in BAD_PARAMS])
def test_parameter_out_of_range_is_refused_in_fit(name, value, match):
    X, Y = _data()
    tagger = AttLocTagger(**{**TINY, name: value})  # __init__ only stores (sklearn convention)
    assert tagger.get_params()[name] is value
    with pytest.raises(ValueError, match=match):
        tagger.fit(X, Y)


def test_validation_fraction_too_small_for_the_data():
    X, Y = _data(n=3)
    with pytest.raises(ValueError, match=r"validation_fraction=0\.1 leaves 0 validation and 3 training clips out of 3; both must be at least 1"):
        AttLocTagger(**TINY, validation_fraction=0.1).fit(X, Y)


# ------------------------------------------------------------------ NaN training loss
def test_largest_allowed_learning_rate_never_hands_back_a_nan_model():
    """lr=10 (the upper bound) either trains or stops with NonFiniteLossError; a larger one is
    refused in fit (above), since Adam's step overflows inside torch with a RuntimeError."""
    X, Y = _data()
    tagger = AttLocTagger(**{**TINY, "learning_rate": 10.0, "max_epochs": 3})
    try:
        tagger.fit(X, Y)
    except NonFiniteLossError as exc:
        assert "training loss became NaN or infinite in epoch" in str(exc)
        assert not hasattr(tagger, "model_")
    else:  # lr=10 may survive: then it must not predict NaN
        assert np.isfinite(tagger.predict_proba(X)).all()


def _poison(monkeypatch, after_calls=0):
    """Make the network's clip output NaN during training after ``after_calls`` forward passes."""
    from skattloc.model import CGRNN

    original = CGRNN.forward
    calls = {"n": 0}

    def forward(self, x, lengths=None):
        out = original(self, x, lengths)
        if self.training:
            calls["n"] += 1
            if calls["n"] > after_calls:
                out.clip = out.clip * torch.nan
        return out

    monkeypatch.setattr(CGRNN, "forward", forward)


def test_nan_loss_raises_and_never_hands_back_a_model(monkeypatch):
    X, Y = _data()
    _poison(monkeypatch)
    tagger = AttLocTagger(**TINY)
    with pytest.raises(NonFiniteLossError, match=r"the training loss became NaN or infinite in epoch 0; lower learning_rate, check the input features"):
        tagger.fit(X, Y)
    assert issubclass(NonFiniteLossError, FloatingPointError)
    with pytest.raises(NotFittedError):
        tagger.predict_proba(X)


def test_failed_refit_leaves_the_estimator_unfitted_not_half_old_half_new(monkeypatch):
    X, Y = _data()
    tagger = AttLocTagger(**TINY).fit(X, Y)
    with pytest.raises(ValueError, match="validation_fraction=0.01 leaves 0 validation"):
        tagger.set_params(validation_fraction=0.01).fit(X, np.c_[Y, Y])  # 3 classes now, then fails
    with pytest.raises(NotFittedError):
        tagger.predict_proba(X)
    tagger.set_params(validation_fraction=0.0).fit(X, Y)
    _poison(monkeypatch)
    with pytest.raises(NonFiniteLossError):
        tagger.fit(X, Y)
    assert not hasattr(tagger, "model_")
    with pytest.raises(NotFittedError):
        tagger.predict_proba(X)


def test_nan_loss_during_warm_start_keeps_the_previous_model(monkeypatch):
    X, Y = _data()
    tagger = AttLocTagger(**TINY, warm_start=True).fit(X, Y)
    before = tagger.predict_proba(X)
    history = list(tagger.history_)
    _poison(monkeypatch)
    with pytest.raises(NonFiniteLossError):
        tagger.fit(X, Y)
    after = tagger.predict_proba(X)
    assert np.isfinite(after).all()
    np.testing.assert_array_equal(after, before)
    assert tagger.history_ == history


def test_nan_loss_in_a_later_epoch_keeps_the_last_good_checkpoint(monkeypatch, tmp_path):
    X, Y = _data()
    steps_per_epoch = int(np.ceil(N / TINY["batch_size"]))
    _poison(monkeypatch, after_calls=steps_per_epoch)  # epoch 0 fine, epoch 1 NaN
    with pytest.raises(NonFiniteLossError, match="in epoch 1"):
        AttLocTagger(**{**TINY, "max_epochs": 3}, checkpoint_dir=tmp_path).fit(X, Y)
    ckpt = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 0
    weights = [v for v in ckpt["state_dict"].values() if isinstance(v, torch.Tensor) and v.is_floating_point()]
    assert weights and all(torch.isfinite(v).all() for v in weights)
