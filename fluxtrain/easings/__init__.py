"""The easing library: Animations.jl easings for keyframe segments.

The shapes are in :mod:`fluxtrain.easings.shapes`; the machinery under them (the repeat options,
:class:`~fluxtrain.easings.curve.CurveEasing`, the :class:`~fluxtrain.easings.curve.Easing`
protocol) in :mod:`fluxtrain.easings.curve`. Nothing here knows of schedules or learners.

Examples:
    >>> from fluxtrain.easings import sineio
    >>> sineio()(0.5)
    0.5
"""

from .curve import CurveEasing as CurveEasing
from .curve import Easing as Easing
from .curve import RepeatOptions as RepeatOptions
from .shapes import expin as expin
from .shapes import expio as expio
from .shapes import expout as expout
from .shapes import funcease as funcease
from .shapes import linear as linear
from .shapes import mixed as mixed
from .shapes import multiplied as multiplied
from .shapes import noease as noease
from .shapes import polyin as polyin
from .shapes import polyio as polyio
from .shapes import polyout as polyout
from .shapes import saccadic as saccadic
from .shapes import sineio as sineio
from .shapes import stepease as stepease

__all__ = [
    "CurveEasing",
    "Easing",
    "expin",
    "expio",
    "expout",
    "funcease",
    "linear",
    "mixed",
    "multiplied",
    "noease",
    "polyin",
    "polyio",
    "polyout",
    "RepeatOptions",
    "saccadic",
    "sineio",
    "stepease",
]
