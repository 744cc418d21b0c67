import signal
import sys
from pathlib import Path

import pytest
import torch

from fluxtrain import (
    FluxTrainError,
    LearningRate,
    LogHyperParams,
    LogMetrics,
    Metrics,
    Momentum,
)
from fluxtrain.scheduler import Scheduler
from fluxtrain.testing import tiny_learner

mlflow = pytest.importorskip("mlflow")
from tracker_script import run_served  # noqa: E402

from fluxtrain.integrations import MLflowBackend, run_config  # noqa: E402
from fluxtrain.integrations.mlflow_backend import metric_key  # noqa: E402

SCRIPT = Path(__file__).with_name("tracker_script.py")
ROOT = Path(__file__).parents[2]


def store(tmp_path):
    return "sqlite:///" + str(tmp_path / "mlflow.db")


def history(client, run_id, key):
    """``{step: value}`` of a metric, checking that a step logged twice has one value."""
    values = {}
    for metric in client.get_metric_history(run_id, key):
        assert values.setdefault(metric.step, metric.value) == metric.value, (key, metric.step)
    return values


def test_a_run_holds_what_cbstate_holds_with_its_config_and_plots(tmp_path):
    backend = MLflowBackend(
        experiment_name="exp",
        tracking_uri=store(tmp_path),
        run_name="one",
        artifact_location=str(tmp_path / "artifacts"),
    )
    scheduler = Scheduler({LearningRate: lambda t: 0.01 / (1 + t), Momentum: 0.5})
    learner = tiny_learner(
        Metrics(),
        scheduler,
        LogMetrics(backend),
        LogHyperParams(backend, every=2),
        backend,
        lr=0.01,
        optimizer=lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
    )
    learner.fit(2)
    client = backend.client
    run = client.get_run(backend.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "one"
    assert run.data.params == run_config(learner)
    assert run.data.params["schedule.Momentum"] == "Constant(0.5, unit='step')"
    assert run.data.params["n_epochs"] == "2" and run.data.params["optimizer.momentum"] == "0.9"
    for key, values in learner.cbstate.metrics_epoch.items():
        assert history(client, backend.run_id, key) == {
            4 * (i + 1): v for i, v in enumerate(values)
        }
    for name, record in learner.cbstate.hyperparams.items():
        want = {t: v for t, v in zip(record.steps, record.values) if t % 2 == 0}
        assert history(client, backend.run_id, f"hyperparams/{name}") == want
        assert sorted(want) == [0, 2, 4, 6]
    # the tiny learner's loss, per step: mean squared error of w * x against 3 * x
    steps = history(client, backend.run_id, "step/train/Loss")
    assert sorted(steps) == list(range(8))
    artifacts = sorted(a.path for a in client.list_artifacts(backend.run_id))
    assert artifacts == ["history.png", "schedule.png"]
    png = mlflow.artifacts.download_artifacts(
        run_id=backend.run_id,
        artifact_path="history.png",
        dst_path=str(tmp_path / "dl"),
        tracking_uri=store(tmp_path),
    )
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_later_fits_and_evaluations_continue_the_run_and_an_error_marks_it_failed(tmp_path):
    backend = MLflowBackend(tracking_uri=store(tmp_path), figures=False)
    learner = tiny_learner(Metrics(), LogMetrics(backend), backend, n_batches=2)
    learner.fit(1)
    run_id = backend.run_id
    learner.fit(1)
    assert backend.run_id == run_id
    assert history(backend.client, run_id, "valid/Loss") == dict(
        zip([2, 4], learner.cbstate.metrics_epoch["valid/Loss"])
    )

    evaluated = learner.evaluate()  # outside a fit: into the same run, opened again for it
    assert history(backend.client, run_id, "eval/Loss") == {4: evaluated["Loss"]}
    assert backend.client.get_run(run_id).info.status == "FINISHED"

    def fail(learner):
        raise RuntimeError("boom")

    from fluxtrain import CustomCallback, EpochEnd

    failing = tiny_learner(Metrics(), LogMetrics(backend), backend, CustomCallback(fail, EpochEnd))
    with pytest.raises(RuntimeError, match="boom"):
        failing.fit(1)
    assert backend.client.get_run(run_id).info.status == "FAILED"
    assert [e.name for e in backend.client.search_experiments()] == ["Default"]


def test_group_hyperparameters_get_names_mlflow_accepts(tmp_path):
    assert metric_key("hyperparams/LearningRate[group=1]") == "hyperparams/LearningRate_group_1_"
    assert metric_key("valid/my metric:top-1.5") == "valid/my metric:top-1.5"


def test_a_backend_outside_the_learners_callbacks_is_a_clear_error(tmp_path):
    backend = MLflowBackend(tracking_uri=store(tmp_path), figures=False)
    with pytest.raises(FluxTrainError, match=r"does not hold it. Add the backend to the learner's"):
        tiny_learner(Metrics(), LogMetrics(backend)).fit(1)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(FluxTrainError, match=r"tracking_uri must be a str or None, got PosixPath"):
        MLflowBackend(tracking_uri=Path("mlruns"))
    with pytest.raises(FluxTrainError, match=r"figures must be True or False, got 'yes'"):
        MLflowBackend(figures="yes")


def test_a_run_killed_and_resumed_is_one_run_holding_what_cbstate_holds(tmp_path):
    args = [store(tmp_path), str(tmp_path / "checkpoints"), str(tmp_path / "out.pt")]
    # 12 steps an epoch: killed in the middle of the second, then resumed
    codes, errors = run_served("mlflow", str(tmp_path), [*args, "17"], args)
    assert codes == [-signal.SIGKILL, 0], errors
    saved = torch.load(tmp_path / "out.pt")
    client = mlflow.MlflowClient(tracking_uri=store(tmp_path))
    (experiment,) = [e for e in client.search_experiments() if e.name == "kill-test"]
    (run,) = client.search_runs([experiment.experiment_id])
    run_id = run.info.run_id
    assert run_id == saved["run_id"] and run.info.status == "FINISHED"
    for key, pairs in saved["step_metrics"].items():
        assert history(client, run_id, "step/" + key) == dict(pairs)
        assert sorted(dict(pairs)) == list(range(36))
    assert set(saved["metrics_epoch"]) == {
        "train/Loss",
        "train/Accuracy",
        "valid/Loss",
        "valid/Accuracy",
    }
    for key, values in saved["metrics_epoch"].items():
        assert history(client, run_id, key) == {12 * (i + 1): v for i, v in enumerate(values)}
    for name, pairs in saved["hyperparams"].items():
        assert history(client, run_id, f"hyperparams/{name}") == dict(pairs)
        assert len(pairs) == 36
    schedules = {
        e.hyperparameter.name: repr(e.schedule) for e in Scheduler.onecycle(3, 0.5).entries
    }
    assert run.data.params["schedule.LearningRate"] == schedules["LearningRate"]
    assert run.data.params["schedule.Momentum"] == schedules["Momentum"]
    assert run.data.params["callbacks"] == (
        "Metrics, Scheduler, LogMetrics, LogHyperParams, StepMetrics, MLflowBackend, Kill, "
        "Checkpointer"
    )
    assert sorted(a.path for a in client.list_artifacts(run_id)) == ["history.png", "schedule.png"]


def test_missing_packages_say_which_extra_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install fluxtrain\[plot\] .* or pass figures="):
        MLflowBackend(tracking_uri=store(tmp_path))
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ImportError, match=r"MLflowBackend needs mlflow: pip install fluxtrain\["):
        MLflowBackend(figures=False)
