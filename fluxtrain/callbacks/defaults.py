"""The callbacks a learner adds unless told not to: the one place the loop gets them from.

Examples:
    >>> [cb.name for cb in default_callbacks()]
    ['Recorder', 'Metrics', 'StopOnNaNLoss', 'ProgressPrinter', 'MetricsPrinter']
"""

from __future__ import annotations

from ..callback import Callback
from .metrics import Metrics
from .printer import MetricsPrinter
from .progress import ProgressPrinter
from .recorder import Recorder
from .stop_on_nan import StopOnNaNLoss


def default_callbacks() -> list[Callback]:
    """New instances of the default callbacks, in their default order.

    ``Learner(..., usedefaultcallbacks=True)`` adds each of these whose type is not among the
    callbacks given.

    Examples:
        >>> [cb.name for cb in default_callbacks()][:2]
        ['Recorder', 'Metrics']
    """
    return [Recorder(), Metrics(), StopOnNaNLoss(), ProgressPrinter(), MetricsPrinter()]
