"""fluxtrain: train PyTorch models with callbacks and expressive hyperparameter schedules."""

from . import distributed as distributed
from . import schedules as schedules
from .access import Read as Read
from .access import Write as Write
from .attribute import Attribute as Attribute
from .attribute import DropoutRate as DropoutRate
from .batch_size import BatchSize as BatchSize
from .callback import Callback as Callback
from .callback import CustomCallback as CustomCallback
from .callbacks.accumulation import GradientAccumulation as GradientAccumulation
from .callbacks.backends import CSVBackend as CSVBackend
from .callbacks.backends import LoggerBackend as LoggerBackend
from .callbacks.backends import TensorBoardBackend as TensorBoardBackend
from .callbacks.checkpointer import Checkpointer as Checkpointer
from .callbacks.custom import throttle as throttle
from .callbacks.early_stopping import EarlyStopping as EarlyStopping
from .callbacks.ema import EMA as EMA
from .callbacks.ema import EMADecay as EMADecay
from .callbacks.gradients import GradientClipNorm as GradientClipNorm
from .callbacks.gradients import GradientClipping as GradientClipping
from .callbacks.logging import LogHyperParams as LogHyperParams
from .callbacks.logging import LogMetrics as LogMetrics
from .callbacks.metric import Accuracy as Accuracy
from .callbacks.metric import Loss as Loss
from .callbacks.metric import Metric as Metric
from .callbacks.metrics import Metrics as Metrics
from .callbacks.precision import MixedPrecision as MixedPrecision
from .callbacks.printer import MetricsPrinter as MetricsPrinter
from .callbacks.progress import ProgressPrinter as ProgressPrinter
from .callbacks.recorder import Recorder as Recorder
from .callbacks.stop_on_nan import StopOnNaNLoss as StopOnNaNLoss
from .callbacks.swa import SWA as SWA
from .callbacks.to_device import ToDevice as ToDevice
from .callbacks.wrapped_metrics import FunctionMetric as FunctionMetric
from .callbacks.wrapped_metrics import TorchMetric as TorchMetric
from .checkpoints.files import latest_checkpoint as latest_checkpoint
from .checkpoints.files import load_checkpoint as load_checkpoint
from .easings import expin as expin
from .easings import expio as expio
from .easings import expout as expout
from .easings import funcease as funcease
from .easings import linear as linear
from .easings import mixed as mixed
from .easings import multiplied as multiplied
from .easings import noease as noease
from .easings import polyin as polyin
from .easings import polyio as polyio
from .easings import polyout as polyout
from .easings import saccadic as saccadic
from .easings import sineio as sineio
from .easings import stepease as stepease
from .events import BackwardBegin as BackwardBegin
from .events import BackwardEnd as BackwardEnd
from .events import EpochBegin as EpochBegin
from .events import EpochEnd as EpochEnd
from .events import Event as Event
from .events import FitBegin as FitBegin
from .events import FitEnd as FitEnd
from .events import LossBegin as LossBegin
from .events import StepBegin as StepBegin
from .events import StepEnd as StepEnd
from .exceptions import BatchError as BatchError
from .exceptions import CallbackConflictError as CallbackConflictError
from .exceptions import CancelEpoch as CancelEpoch
from .exceptions import CancelFitting as CancelFitting
from .exceptions import CancelStep as CancelStep
from .exceptions import CancelUpdate as CancelUpdate
from .exceptions import CheckpointError as CheckpointError
from .exceptions import FluxTrainError as FluxTrainError
from .exceptions import HyperParameterError as HyperParameterError
from .exceptions import ScheduleError as ScheduleError
from .exceptions import StateAccessError as StateAccessError
from .history_plot import plot_history as plot_history
from .hyperparameters import HyperParameter as HyperParameter
from .hyperparameters import LearningRate as LearningRate
from .hyperparameters import Momentum as Momentum
from .hyperparameters import OptimizerHyperParameter as OptimizerHyperParameter
from .hyperparameters import WeightDecay as WeightDecay
from .learner import Learner as Learner
from .lr_finder import LRFinderResult as LRFinderResult
from .lr_finder import lr_find as lr_find
from .ordering import NoConflict as NoConflict
from .ordering import RunFirst as RunFirst
from .ordering import Unresolvable as Unresolvable
from .phases import AbstractTrainingPhase as AbstractTrainingPhase
from .phases import AbstractValidationPhase as AbstractValidationPhase
from .phases import Phase as Phase
from .phases import TrainingPhase as TrainingPhase
from .phases import ValidationPhase as ValidationPhase
from .plots import plot_hyperparams as plot_hyperparams
from .plots import plot_schedule as plot_schedule
from .records import Record as Record
from .scheduler import Scheduler as Scheduler
from .schedules import onecycle as onecycle
from .schedules.base import BaseSchedule as BaseSchedule
from .schedules.base import Constant as Constant
from .schedules.base import FunctionSchedule as FunctionSchedule
from .schedules.keyframes import Schedule as Schedule
from .state import FitResult as FitResult
from .torch_scheduler import TorchScheduler as TorchScheduler

__version__ = "0.1.0"

__all__ = [
    "Attribute",
    "BatchSize",
    "DropoutRate",
    "AbstractTrainingPhase",
    "AbstractValidationPhase",
    "Accuracy",
    "BackwardBegin",
    "BackwardEnd",
    "BaseSchedule",
    "BatchError",
    "Callback",
    "CallbackConflictError",
    "CancelEpoch",
    "CancelFitting",
    "CancelStep",
    "CancelUpdate",
    "Checkpointer",
    "CheckpointError",
    "Constant",
    "CSVBackend",
    "CustomCallback",
    "distributed",
    "EarlyStopping",
    "EMA",
    "EMADecay",
    "EpochBegin",
    "EpochEnd",
    "Event",
    "expin",
    "expio",
    "expout",
    "FitBegin",
    "FitEnd",
    "FitResult",
    "FluxTrainError",
    "funcease",
    "FunctionMetric",
    "FunctionSchedule",
    "GradientAccumulation",
    "GradientClipNorm",
    "GradientClipping",
    "HyperParameter",
    "HyperParameterError",
    "latest_checkpoint",
    "Learner",
    "LearningRate",
    "linear",
    "load_checkpoint",
    "LoggerBackend",
    "LogHyperParams",
    "LogMetrics",
    "Loss",
    "LossBegin",
    "lr_find",
    "LRFinderResult",
    "Metric",
    "Metrics",
    "MetricsPrinter",
    "mixed",
    "MixedPrecision",
    "Momentum",
    "multiplied",
    "NoConflict",
    "noease",
    "onecycle",
    "OptimizerHyperParameter",
    "Phase",
    "plot_history",
    "plot_hyperparams",
    "plot_schedule",
    "polyin",
    "polyio",
    "polyout",
    "ProgressPrinter",
    "Read",
    "Record",
    "Recorder",
    "RunFirst",
    "saccadic",
    "Schedule",
    "ScheduleError",
    "Scheduler",
    "schedules",
    "sineio",
    "StateAccessError",
    "StepBegin",
    "stepease",
    "StepEnd",
    "StopOnNaNLoss",
    "SWA",
    "TensorBoardBackend",
    "throttle",
    "ToDevice",
    "TorchMetric",
    "TorchScheduler",
    "TrainingPhase",
    "Unresolvable",
    "ValidationPhase",
    "WeightDecay",
    "Write",
]
