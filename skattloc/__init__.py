"""skattloc: weakly supervised audio tagging and localization.

Implements Xu, Kong, Huang, Wang & Plumbley, "Attention and Localization based on a
Deep Convolutional Recurrent Model for Weakly Supervised Audio Tagging" (Interspeech 2017)
as a scikit-learn estimator trained by Lightning.
"""
from ._version import __version__

__all__ = ["__version__"]
