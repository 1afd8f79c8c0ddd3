"""skattloc: weakly supervised audio tagging and localization.

Implements Xu, Kong, Huang, Wang & Plumbley, "Attention and Localization based on a
Deep Convolutional Recurrent Model for Weakly Supervised Audio Tagging" (Interspeech 2017)
as a scikit-learn estimator trained by Lightning.

Main entry points:

- :class:`AttLocTagger`: the estimator (``fit``, ``predict_proba``, ``predict``, ``localize``).
- :class:`LogMelExtractor`: waveforms or audio paths to log-mel frames.
- :mod:`skattloc.metrics`: equal error rate (DCASE 2016 Task 4) and localization metrics.
- :mod:`skattloc.datasets`: a synthetic generator and loaders for weakly labelled folders.
- :class:`FeatureStore`, :class:`AudioFeatures`: corpora larger than memory.
- :class:`GMMTagger`: the DCASE 2016 Task 4 GMM baseline.
"""
from ._version import __version__
from .baselines import GMMTagger
from .datasets import load_chime_home, load_weak_dataset, make_weak_events
from .estimator import AttLocTagger
from .features import AudioLoadError, LogMelExtractor, load_audio
from .module import NonFiniteLossError
from .persistence import ModelFileError
from .store import AudioFeatures, FeatureStore

__all__ = [
    "AttLocTagger",
    "AudioFeatures",
    "AudioLoadError",
    "FeatureStore",
    "GMMTagger",
    "LogMelExtractor",
    "ModelFileError",
    "NonFiniteLossError",
    "__version__",
    "load_audio",
    "load_chime_home",
    "load_weak_dataset",
    "make_weak_events",
]
