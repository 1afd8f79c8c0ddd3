"""Audio loading and log-mel feature extraction.

Features follow Xu et al. (Interspeech 2017) and its published code: 16 kHz mono
audio, 32 ms windows (``n_fft=512``) with half overlap (``hop_length=256``),
40 mel bands, natural log of the mel power spectrogram plus a small offset.

Frame timing convention
-----------------------
Frames are computed without padding (``center=False``), so a clip of
``n_samples`` samples gives ``1 + (n_samples - n_fft) // hop_length`` frames
(249 frames for 4 s at 16 kHz). Frame ``i`` analyses samples
``[i * hop_length, i * hop_length + n_fft)``; its **center** is at
``(i * hop_length + n_fft / 2) / sr`` seconds. For frame-level decisions (event
localisation) each frame is taken to stand for the hop-wide span around its
center, ``[frame_offset_seconds + i * hop_seconds,
frame_offset_seconds + (i + 1) * hop_seconds)`` with
``frame_offset_seconds = (n_fft - hop_length) / 2 / sr`` (8 ms by default).
"""
import numbers
import os
import warnings

import librosa
import numpy as np
import scipy.signal
import soundfile as sf
from joblib import Parallel, delayed
from threadpoolctl import ThreadpoolController
from sklearn.base import BaseEstimator, TransformerMixin
from tqdm.auto import tqdm

from ._checks import check_bool, check_int, check_positive_int
from .timing import with_frame_timing

__all__ = ["AudioLoadError", "FEATURE_PARAMS", "LogMelExtractor", "LowSampleRateWarning", "load_audio"]

#: The :class:`LogMelExtractor` parameters that decide the features (not ``n_jobs`` and
#: ``verbose``): the settings a model file records (``AttLocTagger.save(path, extractor=)``).
FEATURE_PARAMS = ("sr", "n_mels", "n_fft", "hop_length", "fmin", "fmax", "log_offset", "resample", "window")


class AudioLoadError(ValueError):
    """Raised when an audio file exists but cannot be decoded."""


class LowSampleRateWarning(UserWarning):
    """Audio files whose sampling rate leaves some mel bands of the features empty.

    A file recorded at a lower rate than the extractor's ``sr`` holds nothing above half
    its own rate (its Nyquist frequency); resampling it up does not add what is not there,
    so the mel bands above that frequency are empty (``log(log_offset)``), unlike in the
    full-band audio a model was trained on. :meth:`LogMelExtractor.transform` issues one
    such warning per call, grouping the files by rate.

    Attributes
    ----------
    files : list of (str, int, int)
        ``(path, original_rate_hz, n_empty_bands)`` of each affected file.
    n_mels : int
        The number of mel bands of the features.
    """

    def __init__(self, message, files=(), n_mels=0):
        super().__init__(message)
        self.files = list(files)
        self.n_mels = n_mels

    @classmethod
    def from_files(cls, files, n_mels, sr, n_total=None):
        """The warning for ``files``, with a one-line message that groups them by rate.

        Parameters
        ----------
        files : list of (str, int, int)
            ``(path, original_rate_hz, n_empty_bands)`` of each affected file.
        n_mels, sr : int
            The extractor's number of mel bands and sampling rate.
        n_total : int, optional
            How many files were read in all (for "3 of 10 audio files").

        Examples
        --------
        >>> from skattloc.features import LowSampleRateWarning
        >>> w = LowSampleRateWarning.from_files([("call.wav", 8000, 8)], n_mels=40, sr=16000)
        >>> print(str(w)[:108])
        1 audio file(s) have a lower sampling rate than the features' 16000 Hz: 1 file(s) at 8000 Hz ('call.wav'): 8
        """
        return cls(_low_rate_message(files, n_mels, sr, n_total), files, n_mels)


def _low_rate_message(files, n_mels, sr, n_total=None):
    """One line describing ``files`` = ``[(path, rate, n_empty), ...]`` (for warnings)."""
    groups = {}
    for path, rate, n_empty in files:
        groups.setdefault((rate, n_empty), []).append(path)
    parts = []
    for (rate, n_empty), paths in sorted(groups.items()):
        shown = ", ".join(repr(os.fspath(q)) for q in paths[:3]) + (", ..." if len(paths) > 3 else "")
        parts.append(
            f"{len(paths)} file(s) at {rate} Hz ({shown}): {n_empty} of {n_mels} mel bands lie above "
            f"{rate / 2:g} Hz, their Nyquist frequency, and are empty"
        )
    of = f" of {n_total}" if n_total is not None else ""
    return (
        f"{len(files)}{of} audio file(s) have a lower sampling rate than the features' {sr} Hz: "
        + "; ".join(parts)
        + ". Predictions on them are unreliable (a model trained on full-band audio sees missing bands); "
        "use audio at the model's rate, or train a model with fmax at most half their rate"
    )


def _read_any(path):
    """Return ``(data (n_samples, n_channels) float32, sample_rate)``."""
    try:
        data, file_sr = sf.read(path, dtype="float32", always_2d=True)
        return data, int(file_sr)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        sf_error = exc
    try:  # formats libsndfile cannot read (e.g. m4a) via librosa / audioread
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, file_sr = librosa.load(path, sr=None, mono=False, dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is reported
        reason = str(exc) or "no installed decoder (ffmpeg, GStreamer, ...) could read it"
        raise AudioLoadError(
            f"cannot read audio file {path!r}: soundfile: {sf_error}; "
            f"audioread fallback: {type(exc).__name__}: {reason}"
        ) from exc
    data = np.atleast_2d(data).T  # librosa gives (n_channels, n_samples)
    return np.ascontiguousarray(data, dtype=np.float32), int(file_sr)


def load_audio(path, sr=16000, mono=True, resample=True):
    """Load an audio file as float32 samples in [-1, 1] at ``sr`` Hz.

    The file is read with soundfile (libsndfile: WAV, FLAC, OGG, MP3, ...); only
    formats it cannot read fall back to librosa/audioread. Integer PCM files (8, 16,
    24, 32 bit) are scaled to [-1, 1] by libsndfile.

    A file at a lower rate than ``sr`` is resampled up, but holds nothing above half its
    own rate: :class:`LogMelExtractor` warns (:class:`LowSampleRateWarning`) when that
    leaves mel bands empty.

    Parameters
    ----------
    path : str or os.PathLike
        Audio file.
    sr : int, default=16000
        Target sampling rate in Hz.
    mono : bool, default=True
        If True, multi-channel audio is downmixed by averaging the channels.
    resample : bool, default=True
        If the file's rate differs from ``sr``: resample with
        ``librosa.resample(res_type="soxr_hq")`` when True, raise ValueError
        when False.

    Returns
    -------
    y : np.ndarray of float32
        Shape (n_samples,) if ``mono``, else (n_channels, n_samples).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    AudioLoadError
        If the file cannot be decoded (the message names the path and reason).
    ValueError
        If the file holds no samples, holds NaN/Inf, or has the wrong rate
        with ``resample=False``.

    Examples
    --------
    >>> import os, tempfile, numpy as np, soundfile as sf
    >>> from skattloc.features import load_audio
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "stereo.wav")
    ...     sf.write(path, np.zeros((8000, 2)), 8000)  # 1 s of stereo at 8 kHz
    ...     y = load_audio(path, sr=16000)  # downmixed and resampled
    >>> y.shape, y.dtype
    ((16000,), dtype('float32'))
    """
    return _load_audio_and_rate(path, sr, mono, resample)[0]


def _load_audio_and_rate(path, sr=16000, mono=True, resample=True):
    """``(load_audio(path, sr, mono, resample), the file's own sampling rate)``."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"audio file not found: {path!r}")
    if os.path.isdir(path):
        raise AudioLoadError(f"cannot read audio file {path!r}: it is a directory")
    if os.path.getsize(path) == 0:
        raise AudioLoadError(f"cannot read audio file {path!r}: the file is empty (0 bytes); expected an audio file")
    check_positive_int(sr, "sr")
    data, file_sr = _read_any(path)
    if data.shape[0] == 0:
        raise ValueError(f"empty audio: {path!r} contains 0 samples")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"audio file {path!r} contains NaN or Inf samples")
    y = data.mean(axis=1) if mono else data.T
    if file_sr != sr:
        if not resample:
            raise ValueError(
                f"audio file {path!r} has sampling rate {file_sr} Hz but {sr} Hz "
                "was expected; pass resample=True to resample it"
            )
        y = librosa.resample(y, orig_sr=file_sr, target_sr=sr, res_type="soxr_hq", axis=-1)
    return np.ascontiguousarray(y, dtype=np.float32), file_sr


def _as_float_waveform(x, i):
    """A waveform as float32; integer PCM scaled to [-1, 1) as soundfile and
    ``librosa.util.buf_to_float`` do: int8/int16/int32 divided by 2**(bits - 1), uint8
    (8-bit WAV) centred on 128 first. Other integer types are refused (not guessed)."""
    try:
        a = np.asarray(x)
        if a.dtype.kind not in "iu":
            return np.asarray(a, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"clip {i} is not a numeric waveform: {exc}") from None
    pcm = (a.dtype.kind == "i" and a.dtype.itemsize in (1, 2, 4)) or (a.dtype.kind == "u" and a.dtype.itemsize == 1)
    if not pcm:
        raise TypeError(
            f"clip {i} holds {a.dtype.name} integers, which are not a PCM sample type; expected float "
            f"samples in [-1, 1] or integer PCM of dtype int8, int16, int32 or uint8 (e.g. from "
            f"scipy.io.wavfile.read); convert it to floats in [-1, 1] yourself, e.g. x / 32768 for "
            f"16-bit samples stored as {a.dtype.name}"
        )
    scale = 2.0 ** (8 * a.dtype.itemsize - 1)
    centre = scale if a.dtype.kind == "u" else 0.0
    return ((a.astype(np.float64) - centre) / scale).astype(np.float32)


_BLAS_CONTROLLER = None


def _one_blas_thread():
    """Context in which BLAS uses one thread. The controller is found once (~10 ms) and
    reused (~0.1 ms a call), as ``transform`` may run once per clip."""
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def _is_path(x):
    return isinstance(x, (str, os.PathLike))


def _logmel(y, mel_basis, n_fft, hop_length, window, log_offset):
    """(n_frames, n_mels) float32 log-mel of one 1-D float32 waveform."""
    spec = librosa.stft(y, n_fft=n_fft, hop_length=hop_length, window=window, center=False)
    power = (spec.real**2 + spec.imag**2).astype(np.float32, copy=False)
    mel = mel_basis @ power  # (n_mels, n_frames)
    return np.ascontiguousarray(np.log(mel + np.float32(log_offset)).T, dtype=np.float32)


class LogMelExtractor(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Log-mel spectrogram features of audio clips (waveforms or files).

    Stateless transformer: ``fit`` only validates the parameters. Features are
    ``log(mel_power + log_offset)`` (natural log) with time first, shape
    (n_frames, n_mels) per clip; see the module docstring for frame timing.

    Waveforms are float samples in [-1, 1]. Integer arrays are read as PCM and scaled to
    [-1, 1) as soundfile and librosa read PCM files: int16 divided by 32768 (``2**15``),
    int32 by ``2**31``, int8 by 128, and uint8 (8-bit WAV) centred, ``(x - 128) / 128``; so
    ``scipy.io.wavfile.read``'s int16 samples give the same features as the file itself.
    Other integer types (int64, uint16...) are refused with a ``TypeError`` rather than
    guessed. Float input is used unchanged.

    Files at a lower sampling rate than ``sr`` are resampled up, but hold nothing above
    their own Nyquist frequency: when that leaves mel bands empty, :meth:`transform` warns
    with one :class:`LowSampleRateWarning` naming the files, their rate and the number of
    empty bands.

    Parameters
    ----------
    sr : int, default=16000
        Sampling rate in Hz of the waveforms; files are loaded at this rate.
    n_mels : int, default=40
        Number of mel bands.
    n_fft : int, default=512
        Window / FFT length in samples (32 ms at 16 kHz).
    hop_length : int, default=256
        Hop in samples (half overlap). ``n_frames = 1 + (n_samples - n_fft) // hop_length``.
    fmin : float, default=0.0
        Lowest mel filter frequency in Hz.
    fmax : float or None, default=None
        Highest mel filter frequency in Hz; None means ``sr / 2``.
    log_offset : float, default=1e-8
        Added to the mel power before the log.
    resample : bool, default=True
        Resample files whose rate differs from ``sr`` (else raise ValueError).
    n_jobs : int or None, default=None
        Clips processed in parallel with joblib (threads by default; change the
        backend with ``joblib.parallel_config``). None means 1.
    verbose : bool, default=False
        Show a tqdm progress bar over clips.
    window : str, default="hamming"
        STFT window (any ``scipy.signal.get_window`` name); the authors' code
        uses a Hamming window.

    Attributes
    ----------
    n_features_out_ : int
        Number of features per frame (``n_mels``).
    mel_frequencies_ : np.ndarray of shape (n_mels,)
        Center frequency in Hz of each mel band.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.features import LogMelExtractor
    >>> X = np.random.default_rng(0).normal(0, 0.1, (2, 64000))  # two 4 s clips
    >>> ext = LogMelExtractor()
    >>> ext.fit_transform(X).shape  # (n_clips, n_frames, n_mels)
    (2, 249, 40)
    >>> round(float(ext.frame_times(249)[0]), 3), ext.hop_seconds
    (0.016, 0.016)
    """

    def __init__(
        self,
        sr=16000,
        n_mels=40,
        n_fft=512,
        hop_length=256,
        fmin=0.0,
        fmax=None,
        log_offset=1e-8,
        resample=True,
        n_jobs=None,
        verbose=False,
        window="hamming",
    ):
        self.sr = sr
        self.n_mels = n_mels
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.fmin = fmin
        self.fmax = fmax
        self.log_offset = log_offset
        self.resample = resample
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.window = window

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.string = True
        return tags

    # ------------------------------------------------------------------ params
    def _validate_params(self):
        for name in ("sr", "n_mels", "n_fft", "hop_length"):
            check_positive_int(getattr(self, name), name)
        nyquist = self.sr / 2
        if not isinstance(self.fmin, numbers.Real) or not 0 <= self.fmin < nyquist:
            raise ValueError(f"fmin must be in [0, sr/2 = {nyquist}) Hz, got {self.fmin!r}")
        if self.fmax is not None and (
            not isinstance(self.fmax, numbers.Real) or not self.fmin < self.fmax <= nyquist
        ):
            raise ValueError(
                f"fmax must be None or in (fmin = {self.fmin}, sr/2 = {nyquist}] Hz, got {self.fmax!r}"
            )
        if not isinstance(self.log_offset, numbers.Real) or not self.log_offset > 0:
            raise ValueError(f"log_offset must be a positive float, got {self.log_offset!r}")
        check_int(self.n_jobs, "n_jobs", allow_none=True)
        check_bool(self.resample, "resample")
        try:
            scipy.signal.get_window(self.window, self.n_fft)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"window must be a scipy.signal.get_window window (e.g. 'hann'), got {self.window!r}: {exc}") from None

    def _mel_basis(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # librosa: empty filters
            try:
                return librosa.filters.mel(
                    sr=self.sr, n_fft=self.n_fft, n_mels=self.n_mels, fmin=self.fmin,
                    fmax=self.fmax, dtype=np.float32,
                )
            except UserWarning as exc:
                raise ValueError(
                    f"n_mels={self.n_mels} is too large for n_fft={self.n_fft} and the "
                    f"range fmin={self.fmin}..fmax={self.fmax} Hz: {exc}"
                ) from exc

    # ---------------------------------------------------------------- timing
    @property
    def frame_timing(self):
        """The :class:`~skattloc.timing.FrameTiming` of these features: ``hop_s`` =
        :attr:`hop_seconds`, ``offset_s`` = :attr:`frame_offset_seconds`.

        The one owner of the frame-to-seconds conversion: :meth:`transform` hands it on
        with its frames, and a tagger fitted on them records it (``frame_timing_``).

        Examples
        --------
        >>> from skattloc.features import LogMelExtractor
        >>> LogMelExtractor(hop_length=160, n_fft=400).frame_timing
        FrameTiming(hop_s=0.01, offset_s=0.0075)
        """
        from .timing import FrameTiming

        return FrameTiming(self.hop_seconds, self.frame_offset_seconds)

    @property
    def hop_seconds(self):
        """Frame hop in seconds, ``hop_length / sr`` (0.016 by default)."""
        return self.hop_length / self.sr

    @property
    def frame_offset_seconds(self):
        """Start in seconds of frame 0's hop-wide span, ``(n_fft - hop_length) / 2 / sr``.

        Frame ``i`` stands for ``[frame_offset_seconds + i * hop_seconds,
        frame_offset_seconds + (i + 1) * hop_seconds)`` (0.008 s by default).
        """
        return (self.n_fft - self.hop_length) / 2 / self.sr

    def frame_times(self, n_frames):
        """Center time of each frame in seconds.

        Parameters
        ----------
        n_frames : int
            Number of frames.

        Returns
        -------
        times : np.ndarray of float64, shape (n_frames,)
            ``(i * hop_length + n_fft / 2) / sr`` for ``i = 0 .. n_frames - 1``.

        Examples
        --------
        >>> from skattloc.features import LogMelExtractor
        >>> LogMelExtractor().frame_times(3)
        array([0.016, 0.032, 0.048])
        """
        check_int(n_frames, "n_frames", 0)
        return (np.arange(n_frames) * self.hop_length + self.n_fft / 2) / self.sr

    def clip_duration(self, n_frames):
        """Seconds of audio that ``n_frames`` frames cover: the clip length up to one hop.

        A clip of ``n_samples`` samples gives ``1 + (n_samples - n_fft) // hop_length``
        frames (no padding), which cover its first ``(n_frames - 1) * hop_length + n_fft``
        samples; the up to ``hop_length - 1`` samples after them are not analysed.

        Parameters
        ----------
        n_frames : int
            Number of frames, >= 1.

        Returns
        -------
        float
            ``((n_frames - 1) * hop_length + n_fft) / sr`` seconds.

        Examples
        --------
        >>> from skattloc.features import LogMelExtractor
        >>> LogMelExtractor().clip_duration(249)  # the frames of a 4 s clip at 16 kHz
        4.0
        """
        check_positive_int(n_frames, "n_frames")
        return ((n_frames - 1) * self.hop_length + self.n_fft) / self.sr

    def feature_params(self):
        """The parameters that decide the features, as plain data.

        Every parameter but ``n_jobs`` and ``verbose`` (which change how, not what, is
        computed): ``LogMelExtractor(**ext.feature_params())`` computes the same features
        as ``ext``. :meth:`AttLocTagger.save(path, extractor=ext)
        <skattloc.AttLocTagger.save>` records them in the model file.

        Returns
        -------
        dict
            The values of :data:`FEATURE_PARAMS`.

        Examples
        --------
        >>> from skattloc.features import LogMelExtractor
        >>> LogMelExtractor(n_mels=64).feature_params()["n_mels"]
        64
        """
        params = self.get_params()
        return {k: params[k] for k in FEATURE_PARAMS}

    # ------------------------------------------------------------ estimator
    def fit(self, X, y=None):
        """Validate the parameters; ``X`` and ``y`` are ignored.

        Parameters
        ----------
        X : list of waveforms or file paths
            Ignored (the transformer is stateless).
        y : ignored

        Returns
        -------
        self : LogMelExtractor

        Examples
        --------
        >>> from skattloc.features import LogMelExtractor
        >>> LogMelExtractor(n_mels=64).fit(None).n_features_out_
        64
        """
        self._validate_params()
        self._mel_basis()  # raises if some mel bands would be empty
        self.mel_frequencies_ = librosa.mel_frequencies(
            n_mels=self.n_mels + 2, fmin=self.fmin, fmax=self.fmax or self.sr / 2
        )[1:-1]
        self.n_features_out_ = self.n_mels
        return self

    def _check_X(self, X):
        """Return ``(items, kind)`` with kind "path" or "wave"; validate waveforms."""
        if _is_path(X):
            raise TypeError("X must be a list of file paths or waveforms, got a single path; wrap it in a list")
        if isinstance(X, np.ndarray) and X.dtype != object:
            if X.ndim != 2:
                raise ValueError(
                    f"X as a numeric array must be 2-D (n_clips, n_samples), got shape {X.shape}; "
                    "wrap a single waveform as X[None, :]"
                )
            items = list(X)
        else:
            try:
                items = list(X)
            except TypeError:
                raise TypeError(
                    f"X must be a list of 1-D waveforms or of file paths, got {type(X).__name__}"
                ) from None
        if len(items) == 0:
            raise ValueError("X is empty: expected at least one waveform or file path")
        is_path = [_is_path(x) for x in items]
        if any(is_path):
            if not all(is_path):
                first = is_path.index(False)
                raise TypeError(
                    "X mixes file paths and waveforms (item "
                    f"{first} is {type(items[first]).__name__}); pass only one kind"
                )
            return items, "path"
        waves = [self._check_wave(_as_float_waveform(x, i), i) for i, x in enumerate(items)]
        return waves, "wave"

    def _check_wave(self, y, i, path=None):
        where = f"clip {i}" + (f" ({path!r})" if path is not None else "")
        if y.ndim != 1:
            raise ValueError(f"{where} must be a 1-D mono waveform, got shape {y.shape}")
        if y.shape[0] < self.n_fft:
            raise ValueError(
                f"{where} has {y.shape[0]} samples; at least n_fft={self.n_fft} samples "
                f"({self.n_fft / self.sr * 1000:g} ms at {self.sr} Hz) are needed"
            )
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{where} contains NaN or Inf values")
        return np.ascontiguousarray(y)

    def _one(self, x, i, kind, mel_basis):
        """``(features, the file's own sampling rate or None for a waveform)``."""
        rate = None
        if kind == "path":
            y, rate = _load_audio_and_rate(x, sr=self.sr, resample=self.resample)
            y = self._check_wave(y, i, os.fspath(x))
        else:
            y = x
        return _logmel(y, mel_basis, self.n_fft, self.hop_length, self.window, self.log_offset), rate

    def empty_bands(self, rate):
        """How many mel bands audio recorded at ``rate`` Hz leaves empty.

        A band is empty when it lies entirely above ``rate / 2``, the Nyquist frequency of
        such audio (its lower edge at or above it): resampling the audio up to ``sr``
        adds nothing there.

        Parameters
        ----------
        rate : int
            The audio's own sampling rate in Hz.

        Returns
        -------
        int
            0 when ``rate / 2`` is at or above ``fmax``.

        Examples
        --------
        >>> from skattloc.features import LogMelExtractor
        >>> ext = LogMelExtractor()  # 16 kHz, 40 bands up to 8 kHz
        >>> ext.empty_bands(8000), ext.empty_bands(16000)
        (8, 0)
        """
        self._validate_params()
        fmax = self.sr / 2 if self.fmax is None else self.fmax
        if rate / 2 >= fmax:
            return 0
        edges = librosa.mel_frequencies(n_mels=self.n_mels + 2, fmin=self.fmin, fmax=fmax)
        return int(np.sum(edges[:-2] >= rate / 2))

    def transform(self, X):
        """Compute log-mel features of each clip.

        Parameters
        ----------
        X : list of 1-D arrays, 2-D float array (n_clips, n_samples), or list of paths
            Waveforms sampled at ``sr`` Hz, or audio files (str / os.PathLike)
            loaded with :func:`load_audio`; kinds cannot be mixed.

        Returns
        -------
        features : FrameArray of float32, shape (n_clips, n_frames, n_mels), or FrameList
            A 3-D array when all clips have the same number of frames, else a
            list of (n_frames_i, n_mels) float32 arrays. Either carries the
            :attr:`frame_timing` of the frames (:class:`skattloc.timing.FrameArray`, an
            ordinary ndarray otherwise), which a tagger fitted on them records.

        Raises
        ------
        ValueError
            Empty ``X``, a clip shorter than ``n_fft`` samples, or NaN/Inf
            (messages name the clip index).
        TypeError
            Non-numeric clips, or integer clips of a type that is not PCM (int64,
            uint16...); int8/int16/int32/uint8 are scaled to [-1, 1) (see the class).

        Warns
        -----
        LowSampleRateWarning
            Files whose own sampling rate leaves mel bands empty (one warning per call,
            naming the files, their rate and the number of empty bands).

        Examples
        --------
        >>> import numpy as np
        >>> from skattloc.features import LogMelExtractor
        >>> clips = [np.zeros(64000), np.zeros(32000)]
        >>> [f.shape for f in LogMelExtractor().transform(clips)]
        [(249, 40), (124, 40)]
        """
        self._validate_params()
        items, kind = self._check_X(X)
        mel_basis = self._mel_basis()
        jobs = (delayed(self._one)(x, i, kind, mel_basis) for i, x in enumerate(items))
        # One BLAS thread for the mel matmul: n_jobs threads never oversubscribe the cores,
        # and features are bit-identical whatever n_jobs and the number of cores (OpenBLAS
        # sums in another order with more threads).
        with _one_blas_thread():
            results = Parallel(n_jobs=self.n_jobs, prefer="threads", return_as="generator")(jobs)
            out = list(
                tqdm(results, total=len(items), disable=not self.verbose, desc="log-mel", unit="clip")
            )
        feats = [f for f, _ in out]
        self._warn_low_rates([(os.fspath(x), rate) for x, (_, rate) in zip(items, out) if rate is not None], len(items))
        return with_frame_timing(np.stack(feats) if len({f.shape for f in feats}) == 1 else feats, self.frame_timing)

    def _warn_low_rates(self, rates, n_total):
        """One :class:`LowSampleRateWarning` for the files whose rate leaves bands empty."""
        counts = {}
        files = []
        for path, rate in rates:
            if rate < self.sr:
                if rate not in counts:
                    counts[rate] = self.empty_bands(rate)
                if counts[rate]:
                    files.append((path, int(rate), counts[rate]))
        if files:
            warnings.warn(LowSampleRateWarning.from_files(files, self.n_mels, self.sr, n_total), stacklevel=3)

    def get_feature_names_out(self, input_features=None):
        """Names of the mel bands, ``["logmel0", ..., "logmel{n_mels-1}"]``.

        Examples
        --------
        >>> from skattloc.features import LogMelExtractor
        >>> LogMelExtractor(n_mels=2).get_feature_names_out()
        array(['logmel0', 'logmel1'], dtype=object)
        """
        return np.asarray([f"logmel{k}" for k in range(self.n_mels)], dtype=object)
