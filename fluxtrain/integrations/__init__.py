"""Where users already work: experiment trackers, hyperparameter search, notebooks.

Each integration imports its package (mlflow, wandb, optuna, IPython) only when it is used,
so importing fluxtrain needs none of them; a missing one is an ``ImportError`` naming the extra
to install (``pip install fluxtrain[mlflow]``, ``[wandb]``, ``[optuna]``, ``[notebook]``).

- :class:`MLflowBackend`, :class:`WandbBackend`: logging backends for
  :class:`~fluxtrain.LogMetrics` and :class:`~fluxtrain.LogHyperParams` that are also
  callbacks (the run's configuration, plots, and the same run after a resume).
- :class:`OptunaPruning`: reports a metric to an Optuna trial and ends a pruned trial's fit.
- :class:`LivePlot`: redraws the fit's metrics and hyperparameters in a notebook.

Examples:
    >>> from fluxtrain.integrations import LivePlot, run_config
    >>> from fluxtrain.testing import tiny_learner
    >>> run_config(tiny_learner(LivePlot()))["callbacks"]
    'LivePlot'
"""

from .live_plot import LivePlot as LivePlot
from .mlflow_backend import MLflowBackend as MLflowBackend
from .optuna_pruning import OptunaPruning as OptunaPruning
from .run_info import run_config as run_config
from .tracking import TrackerBackend as TrackerBackend
from .wandb_backend import WandbBackend as WandbBackend

__all__ = [
    "LivePlot",
    "MLflowBackend",
    "OptunaPruning",
    "TrackerBackend",
    "WandbBackend",
    "run_config",
]
