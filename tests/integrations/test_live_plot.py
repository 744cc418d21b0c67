import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from fluxtrain import BatchSize, FluxTrainError, LearningRate, Metrics, Momentum, Schedule
from fluxtrain.scheduler import Scheduler
from fluxtrain.schedules.base import FunctionSchedule
from fluxtrain.testing import tiny_learner

pytest.importorskip("matplotlib")
from fluxtrain.integrations import LivePlot  # noqa: E402


def lines(figure, title):
    (ax,) = [ax for ax in figure.axes if ax.get_title() == title]
    return {line.get_label(): (line.get_xdata(), line.get_ydata()) for line in ax.get_lines()}


def test_once_per_epoch_with_the_planned_curve_beside_the_applied_one(tmp_path):
    path = tmp_path / "live.png"
    live = LivePlot(path=path)
    lr = FunctionSchedule(lambda f: 0.01 * (1 - f), "fraction")
    scheduler = Scheduler((LearningRate, lr), (Momentum, 0.5))
    learner = tiny_learner(
        Metrics(),
        scheduler,
        live,
        optimizer=lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
    )
    learner.fit(3)
    assert live.redraws == 3
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [ax.get_title() for ax in live.figure.axes] == ["Loss", "LearningRate", "Momentum"]
    drawn = lines(live.figure, "LearningRate")
    assert list(drawn) == ["applied", "planned"]
    record = learner.cbstate.hyperparams["LearningRate"]
    np.testing.assert_array_equal(drawn["applied"][0], record.steps)
    np.testing.assert_array_equal(drawn["applied"][1], record.values)
    np.testing.assert_array_equal(drawn["planned"][0], np.arange(12))
    np.testing.assert_array_equal(drawn["planned"][1], 0.01 * (1 - np.arange(12) / 12))
    np.testing.assert_array_equal(drawn["planned"][1], record.values)  # as planned, bitwise
    loss = lines(live.figure, "Loss")
    np.testing.assert_array_equal(loss["valid"][1], learner.cbstate.metrics_epoch["valid/Loss"])

    learner.fit(1)  # a later fit: planned from its first step on
    drawn = lines(live.figure, "LearningRate")
    np.testing.assert_array_equal(drawn["planned"][0], np.arange(12, 16))
    np.testing.assert_array_equal(drawn["planned"][1], 0.01 * (1 - np.arange(4) / 4))
    assert live.redraws == 1


def test_with_an_interval_it_also_redraws_within_epochs():
    live = LivePlot(interval=1e-9)  # every training step, then at each epoch's end
    learner = tiny_learner(Metrics(), Scheduler({LearningRate: 0.01}), live, n_batches=3)
    learner.fit(2)
    assert live.redraws == 3 * 2 + 2
    live = LivePlot(interval=3600.0)  # never within these epochs
    tiny_learner(Metrics(), live, n_batches=3).fit(2)
    assert live.redraws == 2


def test_under_a_step_budget_the_plan_covers_the_budget():
    live = LivePlot()
    scheduler = Scheduler({LearningRate: lambda t: 0.01 / (1 + t)})
    tiny_learner(Metrics(), scheduler, live).fit(steps=6)
    np.testing.assert_array_equal(lines(live.figure, "LearningRate")["planned"][0], np.arange(6))


def test_bad_arguments_are_clear_errors():
    with pytest.raises(FluxTrainError, match=r"interval must be a number > 0 .* got -1"):
        LivePlot(interval=-1)
    with pytest.raises(FluxTrainError, match=r"path must be a str, os.PathLike or None, got 3"):
        LivePlot(path=3)
    with pytest.raises(FluxTrainError, match=r"notebook must be True, False or None, got 'yes'"):
        LivePlot(notebook="yes")


def test_without_matplotlib_it_says_how_to_install_it_when_built(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"LivePlot needs matplotlib: pip install fluxtrain\["):
        LivePlot()


def test_the_plan_of_a_batch_size_schedule_is_the_fit_bitwise():
    # 20 samples; 2 -> 6 over the first epoch, then 6: 7 steps, then 4 (see test_batch_size.py)
    data = DataLoader(TensorDataset(torch.zeros(20, 1), torch.zeros(20, 1)), batch_size=4)
    scheduler = Scheduler({BatchSize: Schedule([0, 1], [2, 6]), LearningRate: 0.01})
    live = LivePlot()
    learner = tiny_learner(Metrics(), scheduler, live, validation=False)
    learner.fit(2, data)
    drawn = lines(live.figure, "BatchSize")
    record = learner.cbstate.hyperparams["BatchSize"]
    np.testing.assert_array_equal(drawn["planned"][0], np.arange(11))
    np.testing.assert_array_equal(drawn["planned"][1], record.values)
