import builtins

import numpy as np
import pytest
import torch

from fluxtrain import FluxTrainError, LearningRate, Momentum
from fluxtrain.plots import plot_hyperparams, plot_schedule
from fluxtrain.scheduler import Scheduler
from fluxtrain.schedules.keyframes import Schedule
from fluxtrain.testing import tiny_learner

pytest.importorskip("matplotlib")


def test_plot_schedule_of_a_scheduler(tmp_path):
    scheduler = Scheduler({LearningRate: Schedule([0, 1, 3], [0.0, 0.1, 0.0]), Momentum: 0.9})
    path = tmp_path / "schedule.png"
    figure = plot_schedule(scheduler, 3, 10, path=path)
    assert len(figure.axes) == 2
    assert [ax.get_ylabel() for ax in figure.axes] == ["LearningRate", "Momentum"]
    steps, values = figure.axes[0].lines[0].get_data()
    np.testing.assert_array_equal(steps, np.arange(30))
    np.testing.assert_array_equal(values, scheduler.simulate(3, 10)["LearningRate"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_schedule_of_one_schedule(tmp_path):
    figure = plot_schedule(lambda t: 0.5**t, 2, 4, path=tmp_path / "one.png")
    assert len(figure.axes) == 1
    assert figure.axes[0].lines[0].get_data()[1][3] == 0.125
    assert (tmp_path / "one.png").stat().st_size > 0


def test_plot_hyperparams_after_training(tmp_path):
    def sgd(params, lr):
        return torch.optim.SGD(params, lr=lr, momentum=0.5)

    scheduler = Scheduler({LearningRate: lambda t: 0.01 * t, Momentum: 0.9})
    learner = tiny_learner(scheduler, n_batches=3, optimizer=sgd)
    learner.fit(2)
    path = tmp_path / "applied.png"
    figure = plot_hyperparams(learner, path=str(path))
    assert len(figure.axes) == 2
    steps, values = figure.axes[0].lines[0].get_data()
    np.testing.assert_array_equal(steps, np.arange(6))
    np.testing.assert_array_equal(values, 0.01 * np.arange(6))
    assert path.stat().st_size > 0


@pytest.mark.parametrize(("n_epochs", "steps"), [(0, 4), (2, 0), (1.5, 4)])
def test_plot_schedule_needs_a_length(n_epochs, steps):
    with pytest.raises(FluxTrainError, match="must be an int > 0"):
        plot_schedule(0.1, n_epochs, steps)


def test_plot_hyperparams_without_records():
    with pytest.raises(FluxTrainError, match="Add a Scheduler callback and fit first"):
        plot_hyperparams(tiny_learner())


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"pip install fluxtrain\[plot\]"):
        plot_schedule(0.1, 1, 2)
