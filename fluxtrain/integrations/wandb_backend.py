"""Weights & Biases: metrics, hyperparameters, the run's configuration and its plots in a W&B run.

Needs the optional extra ``pip install fluxtrain[wandb]``; wandb is imported when a backend is
built, not with fluxtrain. ``WANDB_MODE=offline`` keeps the run in a local folder
(``wandb/offline-run-...``) to upload later with ``wandb sync``.

Examples:
    >>> STEP_METRIC
    'global_step'
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from ..exceptions import FluxTrainError
from .run_info import png_in
from .tracking import Scalar, TrackerBackend

STEP_METRIC = "global_step"
"""The history key holding a row's training step; every series is plotted against it."""

EXIT_CODES = {"completed": 0, "cancelled": 0}
"""The run's exit code for each ``fitstate.ending`` (others: 1)."""


def history_rows(scalars: list[Scalar]) -> list[dict[str, Any]]:
    """The rows ``run.log`` gets: one per run of consecutive values at the same step.

    Examples:
        >>> history_rows([("a", 1.0, 0, 1, "train"), ("b", 2.0, 0, 1, "train"),
        ...               ("a", 0.5, 1, 1, "train")])
        [{'a': 1.0, 'b': 2.0, 'global_step': 0}, {'a': 0.5, 'global_step': 1}]
    """
    rows: list[tuple[int, dict[str, Any]]] = []
    for name, value, step, _, _ in scalars:
        if not rows or rows[-1][0] != step or name in rows[-1][1]:
            rows.append((step, {}))
        rows[-1][1][name] = value
    return [{**values, STEP_METRIC: step} for step, values in rows]


class WandbBackend(TrackerBackend):
    """Logs a fit to a Weights & Biases run: a
    :class:`~fluxtrain.callbacks.backends.LoggerBackend` and a callback.

    Give it to :class:`~fluxtrain.LogMetrics` and :class:`~fluxtrain.LogHyperParams`, and to the
    learner as a callback::

        wandb_run = WandbBackend(project="digits")
        Learner(..., LogMetrics(wandb_run), LogHyperParams(wandb_run), wandb_run)

    At the first ``FitBegin`` it calls ``wandb.init`` (with ``resume="allow"`` and the run's id
    when it has one), records the learner's configuration in ``run.config``
    (:func:`~fluxtrain.integrations.run_config`) and logs the plot of the
    ``Scheduler``'s schedules as the image ``figures/schedule``. Scalars go to the run's
    history at each flush, one row per step with the step under ``global_step``, the x axis
    of every series (``define_metric``): a resumed fit that logs steps again is drawn where
    they belong. At every ``FitEnd`` it logs ``figures/history`` (``plot_history``) and
    finishes the run (exit code 1 after an error or interrupt). A later ``fit``, or one
    resumed from a checkpoint (the id is in the backend's ``state_dict``), continues the same
    run id. ``run_id`` is the run's id, ``run`` the ``wandb`` run while a fit is in progress.

    Args:
        project: The W&B project; wandb's default (``WANDB_PROJECT``) if ``None``.
        name: The display name of the run.
        run_id: The id of the run to start or continue; wandb makes one if ``None``.
        dir: The folder wandb writes its run folders into (``<dir>/wandb/``).
        figures: Log the schedule and history plots (needs matplotlib).
        **init_kwargs: More arguments of ``wandb.init`` (``entity``, ``tags``, ``group``, ...).

    Raises:
        ImportError: When wandb is not installed.
        FluxTrainError: For arguments of the wrong type.

    Examples:
        >>> import importlib.util
        >>> if importlib.util.find_spec("wandb"):
        ...     print(WandbBackend(project="digits", figures=False))
        ... else:
        ...     print("WandbBackend(project='digits')")
        WandbBackend(project='digits')
    """

    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        run_id: str | None = None,
        dir: str | os.PathLike[str] | None = None,
        figures: bool = True,
        **init_kwargs: Any,
    ) -> None:
        for key, value in (("project", project), ("name", name), ("run_id", run_id)):
            if value is not None and not isinstance(value, str):
                raise FluxTrainError(
                    f"WandbBackend: {key} must be a str or None, got {type(value).__name__}: "
                    f"{value!r}."
                )
        if dir is not None and not isinstance(dir, (str, os.PathLike)):
            raise FluxTrainError(f"WandbBackend: dir must be a path or None, got {dir!r}.")
        for key in ("id", "resume", "config", "reinit"):
            if key in init_kwargs:
                raise FluxTrainError(
                    f"WandbBackend: {key}= is set by the backend (the run id is run_id=, the "
                    f"config is the learner's); got {key}={init_kwargs[key]!r}."
                )
        try:
            import wandb
        except ImportError as error:
            raise ImportError(
                "WandbBackend needs wandb: pip install fluxtrain[wandb] (or pip install wandb)."
            ) from error
        super().__init__(figures)
        self._wandb = wandb
        self.project = project
        self.run_name = name
        self.run_id = run_id
        self.dir = None if dir is None else os.fspath(dir)
        self.init_kwargs = init_kwargs
        self.run: Any = None

    def _open_run(self, run_id: str | None) -> str:
        if self.dir is not None:
            os.makedirs(self.dir, exist_ok=True)
        self.run = self._wandb.init(
            project=self.project,
            name=self.run_name,
            id=run_id,
            resume="allow",
            dir=self.dir,
            **self.init_kwargs,
        )
        self.run.define_metric(STEP_METRIC)
        self.run.define_metric("*", step_metric=STEP_METRIC)
        return str(self.run.id)

    def _log_params(self, params: dict[str, str]) -> None:
        self.run.config.update(params, allow_val_change=True)

    def _log_scalars(self, scalars: list[Scalar]) -> None:
        for row in history_rows(scalars):
            self.run.log(row)

    def _log_figure(self, figure: Any, name: str) -> None:
        with tempfile.TemporaryDirectory() as folder:
            image = self._wandb.Image(png_in(folder, figure, name))
            self.run.log({f"figures/{name.removesuffix('.png')}": image})

    def _end_run(self, ending: str) -> None:
        run, self.run = self.run, None
        if run is not None:
            run.finish(exit_code=EXIT_CODES.get(ending, 1))

    def __repr__(self) -> str:
        where = [
            f"{key}={value!r}"
            for key, value in (
                ("project", self.project),
                ("name", self.run_name),
                ("dir", self.dir),
            )
            if value is not None
        ]
        return f"WandbBackend({', '.join(where)})"
