"""Callbacks shipped with fluxtrain, one module per family.

The loop never imports them; the learner takes its defaults from
:func:`~fluxtrain.callbacks.defaults.default_callbacks`.

Examples:
    >>> from fluxtrain.callbacks import Recorder, default_callbacks
    >>> any(isinstance(cb, Recorder) for cb in default_callbacks())
    True
"""

from .accumulation import GradientAccumulation as GradientAccumulation
from .backends import CSVBackend as CSVBackend
from .backends import LoggerBackend as LoggerBackend
from .backends import TensorBoardBackend as TensorBoardBackend
from .checkpointer import Checkpointer as Checkpointer
from .custom import throttle as throttle
from .defaults import default_callbacks as default_callbacks
from .early_stopping import EarlyStopping as EarlyStopping
from .ema import EMA as EMA
from .ema import EMADecay as EMADecay
from .gradients import GradientClipNorm as GradientClipNorm
from .gradients import GradientClipping as GradientClipping
from .logging import LogHyperParams as LogHyperParams
from .logging import LogMetrics as LogMetrics
from .metric import Accuracy as Accuracy
from .metric import Loss as Loss
from .metric import Metric as Metric
from .metrics import Metrics as Metrics
from .precision import MixedPrecision as MixedPrecision
from .printer import MetricsPrinter as MetricsPrinter
from .progress import ProgressPrinter as ProgressPrinter
from .recorder import Recorder as Recorder
from .stop_on_nan import StopOnNaNLoss as StopOnNaNLoss
from .swa import SWA as SWA
from .to_device import ToDevice as ToDevice
from .wrapped_metrics import FunctionMetric as FunctionMetric
from .wrapped_metrics import TorchMetric as TorchMetric

__all__ = [
    "Accuracy",
    "Checkpointer",
    "CSVBackend",
    "default_callbacks",
    "EarlyStopping",
    "EMA",
    "EMADecay",
    "FunctionMetric",
    "GradientAccumulation",
    "GradientClipNorm",
    "GradientClipping",
    "LoggerBackend",
    "LogHyperParams",
    "LogMetrics",
    "Loss",
    "Metric",
    "Metrics",
    "MetricsPrinter",
    "MixedPrecision",
    "ProgressPrinter",
    "Recorder",
    "StopOnNaNLoss",
    "SWA",
    "TensorBoardBackend",
    "throttle",
    "ToDevice",
    "TorchMetric",
]
