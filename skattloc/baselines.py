"""Classical reference systems.

:class:`GMMTagger` is the DCASE 2016 Task 4 (domestic audio tagging) baseline design:
MFCC frames, one Gaussian mixture per tag trained on the frames of clips that carry the
tag, one background mixture per tag trained on the frames of clips that do not, and a clip
score that is the mean frame log-likelihood ratio. The challenge baseline scored 0.21 EER
on CHiME-Home (development 0.213, evaluation 0.209).

It takes the same input as :class:`~skattloc.AttLocTagger` (log-mel frames from
:class:`~skattloc.LogMelExtractor`) and computes the MFCCs itself, as the type-II DCT of
the log-mel frames in dB (what ``librosa.feature.mfcc`` does on a mel spectrogram), so
``make_pipeline(LogMelExtractor(), GMMTagger())`` works on audio, and one feature cache
serves both systems.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np
from joblib import Parallel, delayed
from scipy.fft import dct
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted

from . import _checks
from .tags import encode_tags, tagger_sklearn_tags

__all__ = ["GMMTagger", "logmel_to_mfcc"]

BACKGROUNDS = ("negative", "universal")
COVARIANCE_TYPES = ("diag", "full", "spherical", "tied")
# natural log -> dB (10 log10) of the mel power.
_NAT_TO_DB = 10.0 / np.log(10.0)


def logmel_to_mfcc(logmel, n_mfcc=14):
    """MFCCs from natural-log mel power frames.

    The type-II orthonormal DCT over mel bands of ``10 * log10(mel power)``, the
    computation of ``librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=None))``,
    with time first.

    Parameters
    ----------
    logmel : ndarray, shape (..., n_mels)
        ``log(mel_power + offset)`` frames (natural log), e.g. one clip of
        :class:`~skattloc.LogMelExtractor` output, shape (n_frames, n_mels).
    n_mfcc : int, default=14
        Coefficients kept (the 0th, energy-like one, included), at most ``n_mels``.

    Returns
    -------
    ndarray, shape (..., n_mfcc), float64
        Cepstral coefficients, in dB units.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.baselines import logmel_to_mfcc
    >>> logmel_to_mfcc(np.zeros((249, 40)), n_mfcc=14).shape
    (249, 14)
    """
    logmel = np.asarray(logmel, dtype=np.float64)
    if logmel.ndim < 1 or logmel.shape[-1] < 1:
        raise ValueError(f"logmel must have mel bands on its last axis, got shape {logmel.shape}")
    if isinstance(n_mfcc, bool) or not isinstance(n_mfcc, numbers.Integral) or not 1 <= n_mfcc <= logmel.shape[-1]:
        raise ValueError(f"n_mfcc must be an int in [1, n_mels={logmel.shape[-1]}], got {n_mfcc!r}")
    return dct(logmel * _NAT_TO_DB, type=2, norm="ortho", axis=-1)[..., :n_mfcc]


def _fit_gmm(frames, n_components, covariance_type, max_iter, reg_covar, seed):
    gmm = GaussianMixture(
        n_components=min(n_components, len(frames)),
        covariance_type=covariance_type,
        max_iter=max_iter,
        reg_covar=reg_covar,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not converge.*")
        return gmm.fit(frames)


class GMMTagger(ClassifierMixin, BaseEstimator):
    """DCASE 2016 Task 4 baseline: per-tag GMMs on MFCC frames, log-likelihood-ratio scores.

    For each tag ``k`` a :class:`~sklearn.mixture.GaussianMixture` ``G_k`` is fitted to the
    MFCC frames of every training clip tagged ``k``, and a background mixture ``B_k`` to
    the frames of every clip without ``k`` (``background="negative"``, the challenge
    baseline) or one background mixture to all frames (``"universal"``). A frame's score
    is ``log p(x | G_k) - log p(x | B_k)``; a clip's score is its mean over frames.

    Parameters
    ----------
    n_components : int, default=8
        Gaussians per mixture.
    n_mfcc : int, default=14
        MFCCs per frame (0th included), computed from the log-mel input by
        :func:`logmel_to_mfcc`.
    covariance_type : {"diag", "full", "spherical", "tied"}, default="diag"
        As in :class:`~sklearn.mixture.GaussianMixture`.
    background : {"negative", "universal"}, default="negative"
        Background model: per tag on the clips without the tag, or one on all clips.
    max_frames : int or None, default=None
        At most this many frames (drawn at random) train each mixture; None uses all.
    max_iter : int, default=100
        EM iterations per mixture.
    reg_covar : float, default=1e-3
        Added to the covariance diagonals (MFCCs are in dB, so values are O(1-100)).
    n_jobs : int or None, default=None
        Mixtures fitted in parallel (joblib); None means 1.
    random_state : int, RandomState or None, default=None
        Seeds the k-means initialization and the frame subsampling.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Tag names (sorted) when ``fit`` got tag collections, else ``0 .. n_classes-1``.
    n_features_in_ : int
        Mel bands per frame seen in ``fit``.
    tag_models_ : list of GaussianMixture
        ``G_k`` per class.
    background_models_ : list of GaussianMixture
        ``B_k`` per class (the same object for every class when ``"universal"``).

    Notes
    -----
    The challenge baseline used 20 ms frames; this class uses the frames it is given (by
    default 32 ms windows with a 16 ms hop from :class:`~skattloc.LogMelExtractor`), so
    it scores the very frames the neural models see.

    Examples
    --------
    >>> from skattloc import LogMelExtractor, make_weak_events
    >>> from skattloc.baselines import GMMTagger
    >>> from skattloc.metrics import equal_error_rate
    >>> audio, Y, _ = make_weak_events(n_clips=40, n_classes=2, duration=1.0, random_state=0)
    >>> X = LogMelExtractor().fit_transform(audio)
    >>> gmm = GMMTagger(n_components=2, random_state=0).fit(X, Y)
    >>> gmm.predict_proba(X).shape, gmm.localize(X).shape
    ((40, 2), (40, 61, 2))
    """

    def __init__(
        self,
        n_components=8,
        n_mfcc=14,
        covariance_type="diag",
        background="negative",
        max_frames=None,
        max_iter=100,
        reg_covar=1e-3,
        n_jobs=None,
        random_state=None,
    ):
        # sklearn's rule: __init__ stores its arguments and nothing else
        vars(self).update((name, value) for name, value in locals().items() if name != "self")

    def __sklearn_tags__(self):
        return tagger_sklearn_tags(super().__sklearn_tags__())

    def _validate_params(self):
        for name in ("n_components", "n_mfcc", "max_iter"):
            _checks.check_positive_int(getattr(self, name), name)
        _checks.check_positive_int(self.max_frames, "max_frames", allow_none=True)
        _checks.check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        _checks.check_option(self.background, "background", BACKGROUNDS)
        _checks.check_number(self.reg_covar, "reg_covar", 0)

    def _check_X(self, X, fitted):
        from .data import check_clips  # torch: imported when the tagger is used

        X = check_clips(
            X,
            n_features=self.n_features_in_ if fitted else None,
            min_features=self.n_mfcc,
            estimator=type(self).__name__,
        )
        return [logmel_to_mfcc(c, self.n_mfcc) for c in X], X[0].shape[-1]

    def _encode(self, y, n_clips, classes=None):
        """``(Y bool (n_clips, n_classes), classes)``; see :func:`skattloc.tags.encode_tags`."""
        Y, classes = encode_tags(y, classes, n_clips=n_clips, owner=type(self).__name__)
        return Y.astype(bool), classes

    def fit(self, X, y):
        """Fit one tag mixture and one background mixture per tag.

        Parameters
        ----------
        X : array of shape (n_clips, n_frames, n_mels) or list of (n_frames_i, n_mels)
            Natural-log mel frames (:class:`~skattloc.LogMelExtractor` output).
        y : array of shape (n_clips, n_classes) of 0/1, or a list of tag-name collections

        Returns
        -------
        self
        """
        self._validate_params()
        mfcc, n_features = self._check_X(X, fitted=False)
        Y, self.classes_ = self._encode(y, len(mfcc))
        self.n_features_in_ = n_features
        seed = _checks.check_random_seed(self.random_state)
        rng = np.random.RandomState(seed)
        lengths = np.array([len(m) for m in mfcc])
        frames = np.concatenate(mfcc, axis=0)
        owner = np.repeat(np.arange(len(mfcc)), lengths)

        def pick(clip_mask, what):
            sel = np.flatnonzero(clip_mask[owner])
            if len(sel) == 0:
                raise ValueError(
                    f"no training frames for the {what}; every tag needs clips with and without it"
                )
            if self.max_frames is not None and len(sel) > self.max_frames:
                sel = np.sort(rng.choice(sel, self.max_frames, replace=False))
            return frames[sel]

        n_classes = Y.shape[1]
        jobs = [pick(Y[:, k], f"tag {self.classes_[k]!r}") for k in range(n_classes)]
        if self.background == "negative":
            jobs += [pick(~Y[:, k], f"background of tag {self.classes_[k]!r}") for k in range(n_classes)]
        else:
            jobs.append(pick(np.ones(len(Y), dtype=bool), "universal background"))
        seeds = rng.randint(0, 2**31 - 1, size=len(jobs))
        models = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_gmm)(f, self.n_components, self.covariance_type, self.max_iter, self.reg_covar, s)
            for f, s in zip(jobs, seeds)
        )
        self.tag_models_ = models[:n_classes]
        self.background_models_ = models[n_classes:] if self.background == "negative" else [models[-1]] * n_classes
        return self

    def frame_llr(self, X):
        """Per-frame log-likelihood ratios ``log p(x|G_k) - log p(x|B_k)``.

        Parameters
        ----------
        X : clips of log-mel frames, an (n_clips, n_frames, n_mels) array or a list of
            (n_frames_i, n_mels) arrays

        Returns
        -------
        list of ndarray, one (n_frames_i, n_classes) float64 array per clip (nats).
        """
        check_is_fitted(self, "tag_models_")
        mfcc, _ = self._check_X(X, fitted=True)
        lengths = np.array([len(m) for m in mfcc])
        frames = np.concatenate(mfcc, axis=0)
        llr = np.empty((len(frames), len(self.classes_)))
        cache = {}
        for k, (g, b) in enumerate(zip(self.tag_models_, self.background_models_)):
            if id(b) not in cache:
                cache[id(b)] = b.score_samples(frames)
            llr[:, k] = g.score_samples(frames) - cache[id(b)]
        return np.split(llr, np.cumsum(lengths)[:-1])

    def decision_function(self, X):
        """Clip scores: the mean frame log-likelihood ratio per tag.

        Returns
        -------
        ndarray of shape (n_clips, n_classes), float64 (nats per frame)
        """
        return np.stack([f.mean(axis=0) for f in self.frame_llr(X)])

    def predict_proba(self, X):
        """``expit`` of :meth:`decision_function`: scores in (0, 1), rank-equivalent.

        A monotone squashing of the mean log-likelihood ratio, not a calibrated probability;
        threshold-free metrics (EER, AP, AUC) are the same as on the raw ratio.

        Returns
        -------
        ndarray of shape (n_clips, n_classes)
        """
        return expit(self.decision_function(X))

    def predict(self, X):
        """0/1 tags: mean log-likelihood ratio > 0 (tag model more likely than background).

        Returns
        -------
        ndarray of shape (n_clips, n_classes), int
        """
        return (self.decision_function(X) > 0).astype(int)

    def localize(self, X):
        """Frame scores in (0, 1): ``expit`` of the frame log-likelihood ratio.

        Returns
        -------
        ndarray of shape (n_clips, n_frames, n_classes) for a 3-D ``X``, else a list of
        (n_frames_i, n_classes) arrays.
        """
        frames = [expit(f) for f in self.frame_llr(X)]
        if isinstance(X, np.ndarray) and X.ndim == 3:
            return np.stack(frames)
        return frames

    def score(self, X, y, sample_weight=None):
        """Negative macro equal error rate of :meth:`predict_proba` (higher is better)."""
        from .metrics import equal_error_rate

        if sample_weight is not None:
            raise ValueError("score does not support sample_weight; the EER is unweighted")
        proba = self.predict_proba(X)
        Y, _ = self._encode(y, len(proba), self.classes_)
        return -float(equal_error_rate(Y.astype(int), proba, average="macro"))
