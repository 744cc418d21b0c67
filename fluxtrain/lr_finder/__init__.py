"""The learning-rate range test: sweep, suggestions, restore and plot.

:func:`~fluxtrain.lr_finder.find.lr_find` runs the sweep (:mod:`~fluxtrain.lr_finder.sweep`),
reads suggestions from its curve (:mod:`~fluxtrain.lr_finder.suggestions`), puts the learner
back exactly as it was (:mod:`~fluxtrain.lr_finder.restore`) and draws the curve
(:mod:`~fluxtrain.lr_finder.plot`).

Examples:
    >>> from fluxtrain.lr_finder import lr_find
    >>> from fluxtrain.testing import tiny_learner
    >>> lr_find(tiny_learner(), seed=0).reason
    'the smoothed loss exceeded 4 x its minimum at lr=6.89'
"""

from .find import lr_find as lr_find
from .plot import plot_lr_find as plot_lr_find
from .suggestions import LRFinderResult as LRFinderResult
from .suggestions import midpoint as midpoint
from .suggestions import minimum as minimum
from .suggestions import slide as slide
from .suggestions import steep as steep
from .suggestions import suggest_lrs as suggest_lrs
from .suggestions import valley as valley

__all__ = [
    "LRFinderResult",
    "lr_find",
    "midpoint",
    "minimum",
    "plot_lr_find",
    "slide",
    "steep",
    "suggest_lrs",
    "valley",
]
