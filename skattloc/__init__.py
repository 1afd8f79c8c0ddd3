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

The names above, and the submodules, are imported on first use: ``import skattloc`` (and
``skattloc --help``) imports neither torch nor Lightning, which load when a model is used.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

from ._version import __version__

# Public name -> the module that defines it, imported on first access (PEP 562).
_EXPORTS = {
    "AttLocTagger": "estimator",
    "AudioFeatures": "store",
    "AudioLoadError": "features",
    "DESED_CONFIG": "estimator",
    "FeatureStore": "store",
    "GMMTagger": "baselines",
    "LogMelExtractor": "features",
    "ModelFileError": "persistence",
    "NonFiniteLossError": "module",
    "PAPER_CONFIG": "estimator",
    "load_audio": "features",
    "load_chime_home": "datasets",
    "load_weak_dataset": "datasets",
    "make_weak_events": "datasets",
}

__all__ = sorted(["__version__", *_EXPORTS])

if TYPE_CHECKING:  # what the lazy names are, for readers and type checkers
    from .baselines import GMMTagger
    from .datasets import load_chime_home, load_weak_dataset, make_weak_events
    from .estimator import DESED_CONFIG, PAPER_CONFIG, AttLocTagger
    from .features import AudioLoadError, LogMelExtractor, load_audio
    from .module import NonFiniteLossError
    from .persistence import ModelFileError
    from .store import AudioFeatures, FeatureStore


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)  # a submodule: skattloc.metrics
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
