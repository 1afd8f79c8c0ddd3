"""Tests for skattloc.features (load_audio, LogMelExtractor)."""
import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skattloc.features import AudioLoadError, LogMelExtractor, load_audio

SR = 16000


def _noise(n, seed=0, scale=0.1):
    return np.random.default_rng(seed).normal(0.0, scale, n).astype(np.float32)


def _tone(freq, n=SR, sr=SR):
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(n) / sr)).astype(np.float32)


# ------------------------------------------------------------------ shapes
def test_four_second_clip_gives_249_frames():
    F = LogMelExtractor().fit_transform([_noise(64000)])
    assert F.shape == (1, 249, 40)
    assert F.dtype == np.float32


@settings(max_examples=15, deadline=None)
@given(n=st.integers(512, 6000), hop=st.sampled_from([128, 256, 512]))
def test_frame_count_formula(n, hop):
    F = LogMelExtractor(hop_length=hop).transform([np.zeros(n, np.float32)])
    assert F.shape == (1, 1 + (n - 512) // hop, 40)


def test_equal_lengths_give_array_unequal_give_list():
    ext = LogMelExtractor().fit(None)
    same = ext.transform(np.stack([_noise(8000, 1), _noise(8000, 2)]))
    assert isinstance(same, np.ndarray) and same.shape == (2, 30, 40)
    diff = ext.transform([_noise(8000), _noise(5000)])
    assert isinstance(diff, list)
    assert [f.shape for f in diff] == [(30, 40), (18, 40)]
    assert all(f.dtype == np.float32 for f in diff)


def test_object_array_input():
    X = np.empty(2, dtype=object)
    X[0], X[1] = _noise(4000), _noise(3000)
    assert [f.shape for f in LogMelExtractor().transform(X)] == [(14, 40), (10, 40)]


def test_features_are_log_mel_power():
    import librosa

    y = _noise(4000)
    S = np.abs(librosa.stft(y, n_fft=512, hop_length=256, window="hamming", center=False)) ** 2
    mel = librosa.filters.mel(sr=SR, n_fft=512, n_mels=40) @ S
    expected = np.log(mel + 1e-8).T
    np.testing.assert_allclose(LogMelExtractor().transform([y])[0], expected, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ files
def test_paths_match_waveforms(tmp_path):
    y1, y2 = _noise(16000, 1), _noise(16000, 2)
    p1, p2 = tmp_path / "a.wav", tmp_path / "b.flac"
    sf.write(p1, y1, SR, subtype="FLOAT")
    sf.write(p2, y2, SR, subtype="PCM_24")
    ext = LogMelExtractor()
    from_files = ext.transform([p1, str(p2)])
    y2_q = sf.read(p2, dtype="float32")[0]  # FLAC is quantised to 24 bit
    np.testing.assert_array_equal(from_files, ext.transform([y1, y2_q]))


def test_stereo_file_is_downmixed(tmp_path):
    left, right = _noise(8000, 1), _tone(1000, 8000)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    y = load_audio(path)
    assert y.shape == (8000,) and y.dtype == np.float32
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-7)
    ext = LogMelExtractor()
    np.testing.assert_allclose(ext.transform([path])[0], ext.transform([(left + right) / 2])[0], atol=1e-4)
    assert load_audio(path, mono=False).shape == (2, 8000)


def test_resampling_and_refusal(tmp_path):
    path = tmp_path / "cd.wav"
    sf.write(path, _tone(440, 44100, 44100), 44100)
    y = load_audio(path, sr=SR)
    assert y.shape == (SR,) and y.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * SR / len(y) - 440) <= 1
    assert LogMelExtractor().transform([path]).shape == (1, 61, 40)
    with pytest.raises(ValueError, match=r"44100 Hz.*16000 Hz"):
        load_audio(path, sr=SR, resample=False)
    with pytest.raises(ValueError, match=r"44100 Hz.*16000 Hz"):
        LogMelExtractor(resample=False).transform([path])


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not found.*nope\.wav"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        LogMelExtractor().transform([tmp_path / "nope.wav"])


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(np.random.default_rng(0).bytes(2048))
    with pytest.raises(AudioLoadError, match=r"cannot read audio file .*corrupt\.wav.*soundfile"):
        load_audio(path)
    assert issubclass(AudioLoadError, ValueError)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), SR)
    with pytest.raises(ValueError, match="empty audio"):
        load_audio(path)


def test_nan_in_file(tmp_path):
    path = tmp_path / "nan.wav"
    y = _noise(1000)
    y[10] = np.nan
    sf.write(path, y, SR, subtype="FLOAT")
    with pytest.raises(ValueError, match="NaN or Inf"):
        load_audio(path)


# ------------------------------------------------------------------ errors
def test_too_short_clip():
    with pytest.raises(ValueError, match=r"clip 1 has 100 samples; at least n_fft=512"):
        LogMelExtractor().transform([_noise(1000), _noise(100)])


def test_too_short_file(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, _noise(100), SR)
    with pytest.raises(ValueError, match=r"clip 0 .*short\.wav.* has 100 samples"):
        LogMelExtractor().transform([path])


def test_nan_waveform():
    y = _noise(1000)
    y[3] = np.inf
    with pytest.raises(ValueError, match="clip 2 contains NaN or Inf"):
        LogMelExtractor().transform([_noise(1000), _noise(1000), y])


@pytest.mark.parametrize("X", [[], np.zeros((0, 1000))])
def test_empty_X(X):
    with pytest.raises(ValueError, match="X is empty"):
        LogMelExtractor().transform(X)


def test_bad_inputs(tmp_path):
    ext = LogMelExtractor()
    with pytest.raises(TypeError, match="mixes file paths and waveforms"):
        ext.transform([str(tmp_path / "a.wav"), _noise(1000)])
    with pytest.raises(TypeError, match="single path"):
        ext.transform(str(tmp_path / "a.wav"))
    with pytest.raises(ValueError, match=r"2-D \(n_clips, n_samples\)"):
        ext.transform(_noise(1000))
    with pytest.raises(ValueError, match="clip 0 must be a 1-D mono waveform"):
        ext.transform([np.zeros((2, 1000))])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_mels": 0}, "n_mels must be a positive int"),
        ({"hop_length": 1.5}, "hop_length must be a positive int"),
        ({"fmax": 9000}, r"fmax must be None or in"),
        ({"log_offset": 0}, "log_offset must be a positive"),
        ({"n_mels": 300}, "n_mels=300 is too large"),
    ],
)
def test_bad_params(params, match):
    with pytest.raises(ValueError, match=match):
        LogMelExtractor(**params).fit(None)
    with pytest.raises(ValueError, match=match):
        LogMelExtractor(**params).transform([_noise(1000)])


# ------------------------------------------------------------------ behaviour
def test_n_jobs_identical():
    X = [_noise(16000, s) for s in range(6)]
    np.testing.assert_array_equal(
        LogMelExtractor(n_jobs=1).transform(X), LogMelExtractor(n_jobs=2).transform(X)
    )


@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0, 6000.0])
def test_pure_tone_peaks_at_expected_mel_bin(freq):
    ext = LogMelExtractor().fit(None)
    F = ext.transform([_tone(freq)])[0]
    expected = int(np.argmin(np.abs(ext.mel_frequencies_ - freq)))
    assert abs(int(np.argmax(F.mean(axis=0))) - expected) <= 1
    assert ext.mel_frequencies_.shape == (40,) and ext.n_features_out_ == 40


def test_frame_times_and_offsets():
    ext = LogMelExtractor()
    np.testing.assert_allclose(ext.frame_times(3), [0.016, 0.032, 0.048])
    assert ext.hop_seconds == 0.016
    assert ext.frame_offset_seconds == 0.008
    t = ext.frame_times(249)
    # frame i's center is the middle of its hop-wide span
    np.testing.assert_allclose(t, ext.frame_offset_seconds + (np.arange(249) + 0.5) * ext.hop_seconds)
    assert t[-1] + ext.hop_seconds / 2 <= 4.0
    other = LogMelExtractor(sr=8000, n_fft=400, hop_length=100)
    np.testing.assert_allclose(other.frame_times(2), [0.025, 0.0375])
    assert other.frame_offset_seconds == pytest.approx(0.01875)


def test_verbose_progress_bar(capsys):
    LogMelExtractor(verbose=True).transform([_noise(1000)])
    assert "log-mel" in capsys.readouterr().err


def test_clone_and_pipeline_on_waveforms_and_paths(tmp_path):
    ext = LogMelExtractor(n_mels=32, n_jobs=2)
    assert clone(ext).get_params() == ext.get_params()
    X = [_tone(500, 4000), _noise(4000, 1), _tone(500, 4000) + _noise(4000, 2, 0.01), _noise(4000, 3)]
    y = [1, 0, 1, 0]
    pipe = make_pipeline(ext, FunctionTransformer(lambda F: F.mean(axis=1)), LogisticRegression())
    assert list(pipe.fit(X, y).predict(X)) == y
    paths = []
    for i, x in enumerate(X):
        paths.append(tmp_path / f"{i}.wav")
        sf.write(paths[-1], x, SR, subtype="FLOAT")
    assert list(clone(pipe).fit(paths, y).predict(paths)) == y
    assert list(ext.get_feature_names_out()[:2]) == ["logmel0", "logmel1"]
