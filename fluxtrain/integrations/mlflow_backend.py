"""MLflow: metrics, hyperparameters, the run's configuration and its plots in an MLflow run.

Needs the optional extra ``pip install fluxtrain[mlflow]``; mlflow is imported when a backend
is built, not with fluxtrain.

Examples:
    >>> import importlib.util, os, tempfile
    >>> from fluxtrain import LogMetrics, Metrics
    >>> from fluxtrain.testing import tiny_learner
    >>> if importlib.util.find_spec("mlflow"):
    ...     uri = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "mlflow.db")
    ...     backend = MLflowBackend(tracking_uri=uri, figures=False)
    ...     _ = tiny_learner(Metrics(), LogMetrics(backend), backend).fit(1)
    ...     history = backend.client.get_metric_history(backend.run_id, "valid/Loss")
    ...     print(len(history))
    ... else:
    ...     print(1)
    1
"""

from __future__ import annotations

import re
import tempfile
import time
from typing import Any

from ..exceptions import FluxTrainError
from .run_info import png_in
from .tracking import Scalar, TrackerBackend

BATCH = 1000
"""Most metrics MLflow takes in one ``log_batch`` call."""

STATUS = {"completed": "FINISHED", "cancelled": "FINISHED", "interrupted": "KILLED"}
"""The MLflow run status for each ``fitstate.ending`` (others: ``"FAILED"``)."""


def metric_key(name: str) -> str:
    """The MLflow metric name of a series: characters MLflow refuses become ``_``.

    MLflow takes letters, digits and ``_ - . / :`` and spaces in names.

    Examples:
        >>> metric_key("hyperparams/LearningRate[group=1]")
        'hyperparams/LearningRate_group_1_'
    """
    return re.sub(r"[^\w\-./: ]", "_", name)


class MLflowBackend(TrackerBackend):
    """Logs a fit to an MLflow run: a :class:`~fluxtrain.callbacks.backends.LoggerBackend` and a
    callback.

    Give it to :class:`~fluxtrain.LogMetrics` and :class:`~fluxtrain.LogHyperParams`, and to the
    learner as a callback::

        mlflow_run = MLflowBackend(experiment_name="digits", tracking_uri="sqlite:///mlflow.db")
        Learner(..., LogMetrics(mlflow_run), LogHyperParams(mlflow_run), mlflow_run)

    At the first ``FitBegin`` it starts a run (or logs into ``run_id``) and records the
    learner's configuration as params (:func:`~fluxtrain.integrations.run_config`)
    and the plot of the ``Scheduler``'s schedules as the artifact ``schedule.png``. Every
    scalar becomes a metric at its step (names through :func:`metric_key`), sent in batches
    at each flush. At every ``FitEnd`` it logs ``history.png`` (``plot_history``) and ends the
    run: ``FINISHED``, ``KILLED`` after a ``KeyboardInterrupt``, ``FAILED`` after an error.
    A later ``fit``, or one resumed from a checkpoint (the run id is in the backend's
    ``state_dict``), logs into the same run and sets it ``RUNNING`` again; params are logged
    once per run. ``run_id`` is the run's id; ``client`` the ``MlflowClient`` used (made at the
    first fit, so building the backend touches no store).

    Args:
        experiment_name: The experiment of a new run; MLflow's default experiment if ``None``.
            It is created when missing.
        tracking_uri: Where MLflow stores runs (``"sqlite:///mlflow.db"``,
            ``"http://127.0.0.1:5000"``); MLflow's default (``MLFLOW_TRACKING_URI``) if ``None``.
        run_name: The name of a new run.
        run_id: Log into this existing run instead of starting one.
        tags: Tags of a new run.
        figures: Log ``schedule.png`` and ``history.png`` (needs matplotlib).
        artifact_location: Where the experiment keeps its artifacts, when this backend creates
            it; MLflow's default if ``None`` (``./mlruns`` for a ``sqlite:///`` store).

    Raises:
        ImportError: When mlflow is not installed.
        FluxTrainError: For arguments of the wrong type.

    Examples:
        >>> import importlib.util, os, tempfile
        >>> uri = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "mlflow.db")
        >>> if importlib.util.find_spec("mlflow"):
        ...     print(MLflowBackend(experiment_name="digits", tracking_uri=uri))
        ... else:
        ...     print(f"MLflowBackend(experiment_name='digits', tracking_uri={uri!r})")
        ... # doctest: +ELLIPSIS
        MLflowBackend(experiment_name='digits', tracking_uri='sqlite:///...mlflow.db')
    """

    def __init__(
        self,
        experiment_name: str | None = None,
        tracking_uri: str | None = None,
        run_name: str | None = None,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        figures: bool = True,
        artifact_location: str | None = None,
    ) -> None:
        for name, value in (
            ("experiment_name", experiment_name),
            ("tracking_uri", tracking_uri),
            ("run_name", run_name),
            ("run_id", run_id),
            ("artifact_location", artifact_location),
        ):
            if value is not None and not isinstance(value, str):
                raise FluxTrainError(
                    f"MLflowBackend: {name} must be a str or None, got {type(value).__name__}: "
                    f"{value!r}."
                )
        if tags is not None and not isinstance(tags, dict):
            raise FluxTrainError(f"MLflowBackend: tags must be a dict or None, got {tags!r}.")
        try:
            import mlflow  # noqa: F401
        except ImportError as error:
            raise ImportError(
                "MLflowBackend needs mlflow: pip install fluxtrain[mlflow] (or pip install mlflow)."
            ) from error
        super().__init__(figures)
        self.experiment_name = experiment_name
        self.tracking_uri = tracking_uri
        self.run_name = run_name
        self.tags = dict(tags or {})
        self.artifact_location = artifact_location
        self.run_id = run_id
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The ``MlflowClient`` of ``tracking_uri``, made at its first use (the first fit)."""
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _experiment_id(self) -> str:
        if self.experiment_name is None:
            return "0"  # MLflow's Default experiment
        experiment = self.client.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            return str(experiment.experiment_id)
        experiment_id = self.client.create_experiment(
            self.experiment_name, artifact_location=self.artifact_location
        )
        return str(experiment_id)

    def _open_run(self, run_id: str | None) -> str:
        if run_id is None:
            run = self.client.create_run(
                self._experiment_id(), run_name=self.run_name, tags=self.tags
            )
            return str(run.info.run_id)
        if self.client.get_run(run_id).info.status != "RUNNING":
            self.client.update_run(run_id, status="RUNNING")
        return run_id

    def _log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        self._batch([], [Param(key, value[:6000]) for key, value in params.items()])

    def _log_scalars(self, scalars: list[Scalar]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(metric_key(name), value, now, step) for name, value, step, _, _ in scalars
        ]
        self._batch(metrics, [])

    def _batch(self, metrics: list[Any], params: list[Any]) -> None:
        assert self.run_id is not None
        for start in range(0, len(metrics), BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[start : start + BATCH])
        for start in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[start : start + 100])

    def _log_figure(self, figure: Any, name: str) -> None:
        assert self.run_id is not None
        with tempfile.TemporaryDirectory() as folder:
            self.client.log_artifact(self.run_id, png_in(folder, figure, name))

    def _end_run(self, ending: str) -> None:
        assert self.run_id is not None
        self.client.set_terminated(self.run_id, status=STATUS.get(ending, "FAILED"))

    def __repr__(self) -> str:
        where = [
            f"{name}={value!r}"
            for name, value in (
                ("experiment_name", self.experiment_name),
                ("tracking_uri", self.tracking_uri),
                ("run_name", self.run_name),
            )
            if value is not None
        ]
        return f"MLflowBackend({', '.join(where)})"
