import copy
import io
import math
import random
import sys
import types

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from fluxtrain import (
    Accuracy,
    Callback,
    FluxTrainError,
    Learner,
    LearningRate,
    Metrics,
    MetricsPrinter,
    ProgressPrinter,
    Read,
    Recorder,
    RunFirst,
    StopOnNaNLoss,
    ToDevice,
    TrainingPhase,
    Write,
)
from fluxtrain.lr_finder import LRFinderResult, lr_find
from fluxtrain.lr_finder.suggestions import (
    default_smoothing,
    midpoint,
    minimum,
    slide,
    smooth,
    steep,
    suggest_lrs,
    valley,
)
from fluxtrain.lr_finder.sweep import Cycle, runs_in_sweep
from fluxtrain.scheduler import Scheduler
from fluxtrain.testing import Unsized, tiny_learner

# -- a least-squares problem whose divergence threshold is known -------------------------------


def least_squares(*callbacks, seed=0, n=512, d=8, batch_size=64, noise=0.5):
    """Mini-batch SGD on mean((Xw - y)^2); returns the learner and 2 / L.

    The Hessian of the mean squared loss over all the data is H = 2 X^T X / n. Gradient
    descent on it, full-batch or (in expectation) with mini-batches cycling through the data,
    diverges for lr > 2 / L, L the largest eigenvalue of H.
    """
    generator = torch.Generator().manual_seed(seed)
    scales = torch.linspace(0.3, 1.5, d, dtype=torch.float64)
    x = torch.randn(n, d, generator=generator, dtype=torch.float64) * scales
    w = torch.randn(d, 1, generator=generator, dtype=torch.float64)
    y = x @ w + noise * torch.randn(n, 1, generator=generator, dtype=torch.float64)
    largest = torch.linalg.eigvalsh(2 * x.T @ x / n).max().item()
    model = torch.nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        model.weight.zero_()
    batches = [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, n, batch_size)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    learner = Learner(
        model,
        batches,
        optimizer,
        torch.nn.functional.mse_loss,
        *callbacks,
        usedefaultcallbacks=False,
    )
    return learner, 2.0 / largest


@pytest.mark.parametrize(
    "kwargs, factor",
    [
        ({"start": 1e-4}, 2.5),  # 1.097x per step: measured 2.01 (2.53 with smoothing 0.98)
        ({"num_steps": 200}, 2.5),  # 1.097x per step: measured 2.03 (2.23 with 0.98)
        ({}, 3.5),  # 1.205x per step: measured 2.65 (3.19 with 0.98)
    ],
)
def test_sweep_stops_within_a_factor_above_two_over_l_and_suggests_below(kwargs, factor):
    learner, critical = least_squares()
    result = lr_find(learner, **kwargs)
    stop = result.lrs[-1]
    assert critical < stop <= factor * critical
    assert result.reason == f"the smoothed loss exceeded 4 x its minimum at lr={stop:.3g}"
    assert list(result.suggestions) == ["midpoint", "valley", "steep", "minimum", "slide"]
    for name, lr in result.suggestions.items():
        assert 0 < lr < critical, name


def test_every_suggestion_is_below_two_over_l_for_other_data():
    for seed in (1, 2, 3):
        learner, critical = least_squares(seed=seed, batch_size=32)
        result = lr_find(learner, start=1e-4)
        assert critical < result.lrs[-1] <= 3.0 * critical
        assert max(result.suggestions.values()) < critical


def test_curve_is_the_exact_sweep_with_bias_corrected_smoothing():
    learner, _ = least_squares()
    result = lr_find(learner, start=1e-3, end=1e-1, num_steps=30, mode="exp", smoothing=0.9)
    i = np.arange(30)
    assert len(result.lrs) == 30
    np.testing.assert_array_equal(result.lrs, 1e-3 * (1e-1 / 1e-3) ** (i / 29))
    assert result.lrs[-1] == 1e-1
    np.testing.assert_array_equal(result.smoothed_losses, smooth(result.losses, 0.9))
    assert result.smoothed_losses[0] == result.losses[0]
    assert result.reason == "completed all 30 steps"
    linear = lr_find(learner, start=0.0, end=0.3, num_steps=10, mode="linear")
    np.testing.assert_array_equal(linear.lrs, 0.3 * np.arange(10) / 9)


def test_the_swept_lr_is_applied_to_each_param_group_in_proportion_and_scheduler_suspended():
    model = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.Linear(1, 1))
    optimizer = torch.optim.SGD(
        [{"params": model[0].parameters(), "lr": 0.1}, {"params": model[1].parameters()}],
        lr=0.01,
    )
    seen = []

    def loss_fn(outputs, targets):
        seen.append([group["lr"] for group in optimizer.param_groups])
        return torch.nn.functional.mse_loss(outputs, targets)

    data = [(torch.ones(4, 1), torch.ones(4, 1))]
    scheduler = Scheduler({LearningRate: lambda t: 123.0})
    learner = Learner(model, data, optimizer, loss_fn, scheduler, usedefaultcallbacks=False)
    result = lr_find(learner, start=1e-5, end=1e-3, num_steps=12, diverge=None)
    ratio = 0.01 / 0.1  # each group keeps its share of the largest group's lr
    assert result.group_ratios == (1.0, ratio)
    assert seen == [[lr, lr * ratio] for lr in result.lrs.tolist()]
    assert [group["lr"] for group in optimizer.param_groups] == [0.1, 0.01]
    assert learner.cbstate.hyperparams == {}


# -- leaving no trace ---------------------------------------------------------------------------


class NoisyInputs(Callback):
    """A callback that changes the step (so it runs in the sweep) and has its own state."""

    stateaccess = {"batch.inputs": Write}

    def __init__(self):
        self.generator = torch.Generator().manual_seed(7)
        self.calls = 0

    def resolveconflict(self, other):
        return RunFirst(other)  # after ToDevice

    def on_step_begin(self, phase, learner):
        if not isinstance(phase, TrainingPhase):
            return
        self.calls += 1
        noise = torch.randn(learner.batch.inputs.shape, generator=self.generator)
        learner.batch.inputs = learner.batch.inputs + 0.01 * noise

    def state_dict(self):
        return {"calls": self.calls, "generator": self.generator.get_state()}


def classifier_learner(seeded_loader=True, device="cpu"):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(96, 6, generator=generator)
    targets = (inputs[:, 0] + inputs[:, 1] > 0).long() + (inputs[:, 2] > 1).long()
    loader_generator = torch.Generator().manual_seed(2) if seeded_loader else None
    train = DataLoader(
        TensorDataset(inputs[:64], targets[:64]),
        batch_size=16,
        shuffle=True,
        generator=loader_generator,
    )
    valid = DataLoader(TensorDataset(inputs[64:], targets[64:]), batch_size=32)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 16),
        torch.nn.BatchNorm1d(16),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.2),
        torch.nn.Linear(16, 3),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    return Learner(
        model,
        (train, valid),
        optimizer,
        torch.nn.functional.cross_entropy,
        Metrics(Accuracy()),
        Scheduler({LearningRate: lambda t: 0.05 * 0.97**t}),
        NoisyInputs(),
        ToDevice(device),
        ProgressPrinter(file=io.StringIO()),
        MetricsPrinter(file=io.StringIO()),
    )


def assert_identical(a, b, path="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, path
        assert torch.equal(a.view(-1).view(torch.uint8), b.view(-1).view(torch.uint8)), path
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), path
        for key in a:
            assert_identical(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), path
    elif isinstance(a, torch.Generator):
        assert_identical(a.get_state(), b.get_state(), path)
    elif isinstance(a, type):
        assert a is b, path  # a class held as state (e.g. a progress bar's): the same one
    elif hasattr(a, "__dict__") and not isinstance(a, (types.FunctionType, types.MethodType)):
        assert type(a) is type(b), path
        assert_identical(own_state(a), own_state(b), path)
    else:
        assert a == b or (a != a and b != b), path  # NaN equals NaN here


def own_state(obj):
    """An object's attributes, without the output files of printers."""
    return {k: v for k, v in vars(obj).items() if k != "file"}


def everything(learner):
    """All state a fit may change, copied."""
    model, optimizer = learner.model, learner.optimizer
    data = learner.data.train
    return {
        "parameters": {n: p.detach().clone() for n, p in model.named_parameters()},
        "buffers": {n: b.detach().clone() for n, b in model.named_buffers()},
        "grads": {
            n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()
        },
        "modes": [m.training for m in model.modules()],
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "cbstate": copy.deepcopy(dict(vars(learner.cbstate))),
        "batch": [getattr(learner.batch, name) for name in ("inputs", "targets", "loss")],
        "fitstate": copy.deepcopy(learner.fitstate),
        "callbacks": [id(cb) for cb in learner.callbacks],
        "callback_states": [copy.deepcopy(cb.state_dict()) for cb in learner.callbacks],
        "callback_vars": [copy.deepcopy(own_state(cb)) for cb in learner.callbacks],
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "loader": None if data.generator is None else data.generator.get_state(),
    }


@pytest.mark.parametrize("seed", [None, 5])
def test_lr_find_restores_all_state_bitwise(seed):
    learner = classifier_learner()
    learner.fit(1)  # momentum buffers, BatchNorm statistics, metrics, hyperparams, history
    learner.model.eval()
    learner.model[1].train()  # mixed modes come back per module
    learner.model[0].weight.grad = torch.full_like(learner.model[0].weight, 0.5)
    before = everything(learner)
    noisy = learner.callbacks[[cb.name for cb in learner.callbacks].index("NoisyInputs")]
    result = lr_find(learner, num_steps=30, seed=seed)
    assert len(result.lrs) >= 6
    assert_identical(before, everything(learner))
    assert noisy.calls == 4  # one fit of 4 steps; the sweep ran a copy


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_lr_find_restores_a_cuda_model_and_the_cuda_random_state():
    learner = classifier_learner(device="cuda")
    learner.fit(1)
    before = everything(learner)
    cuda_rng = torch.cuda.get_rng_state_all()
    lr_find(learner, num_steps=20, seed=1)
    assert_identical(before, everything(learner))
    assert_identical(cuda_rng, torch.cuda.get_rng_state_all())


@pytest.mark.parametrize("seeded_loader", [True, False])
def test_fit_after_lr_find_equals_fit_without(seeded_loader):
    plain, swept = classifier_learner(seeded_loader), classifier_learner(seeded_loader)
    torch.manual_seed(11)
    plain.fit(1)
    plain.fit(2)
    torch.manual_seed(11)
    swept.fit(1)
    lr_find(swept, num_steps=20)
    swept.fit(2)
    assert_identical(dict(plain.model.state_dict()), dict(swept.model.state_dict()))
    assert_identical(plain.optimizer.state_dict(), swept.optimizer.state_dict())
    assert plain.cbstate.metrics_epoch == swept.cbstate.metrics_epoch
    assert plain.cbstate.hyperparams == swept.cbstate.hyperparams
    assert plain.cbstate.history == swept.cbstate.history


def test_progress_shows_the_sweep_on_the_progress_printers_file():
    learner = classifier_learner()
    printer = next(cb for cb in learner.callbacks if isinstance(cb, ProgressPrinter))
    lr_find(learner, num_steps=12, diverge=None)
    shown = printer.file.getvalue()
    assert "lr_find" in shown and "12/12" in shown
    assert "Epoch" not in shown  # the learner's own bars did not run


def test_the_default_rule_keeps_step_changing_callbacks_only():
    kept = [runs_in_sweep(cb) for cb in classifier_learner().callbacks]
    names = [cb.name for cb in classifier_learner().callbacks]
    assert dict(zip(names, kept)) == {
        "Recorder": False,
        "Metrics": False,
        "Scheduler": False,
        "NoisyInputs": True,
        "ToDevice": True,
        "StopOnNaNLoss": False,
        "ProgressPrinter": False,
        "MetricsPrinter": False,
    }


class FreezeGradients(Callback):
    """Declares the model and acts between backward and the update, as gradient clipping."""

    stateaccess = {"model": Read}

    def __init__(self):
        self.calls = 0

    def on_backward_end(self, phase, learner):
        self.calls += 1
        learner.model.zero_grad()


def test_callbacks_that_change_the_step_run_in_the_sweep_as_copies():
    freeze = FreezeGradients()
    learner, _ = least_squares(freeze)
    assert runs_in_sweep(freeze)
    result = lr_find(learner, diverge=None)
    # no update ever happens: each batch of the 8 gives the same loss on every pass
    assert result.reason == "completed all 100 steps"
    np.testing.assert_array_equal(result.losses[8:], result.losses[:-8])
    assert freeze.calls == 0
    without = lr_find(learner, keep=lambda cb: False)
    assert len(without.lrs) < 100


def test_keeping_every_callback_still_restores_everything():
    learner = classifier_learner()
    learner.fit(1)
    before = everything(learner)
    lr_find(learner, num_steps=15, keep=lambda cb: True)
    assert_identical(before, everything(learner))


def test_callbacks_and_state_are_restored_after_an_error():
    learner, _ = least_squares(Recorder(), Metrics())
    optimizer = learner.optimizer

    def failing(outputs, targets):
        if optimizer.param_groups[0]["lr"] > 1e-3:
            raise RuntimeError("boom at a large lr")
        return torch.nn.functional.mse_loss(outputs, targets)

    learner.loss_fn = failing
    order = [id(cb) for cb in learner.callbacks]
    with pytest.raises(RuntimeError, match="boom at a large lr"):
        lr_find(learner, start=1e-5, end=1.0)
    assert [id(cb) for cb in learner.callbacks] == order
    assert torch.count_nonzero(learner.model.weight) == 0
    assert optimizer.param_groups[0]["lr"] == 0.1
    learner.loss_fn = torch.nn.functional.mse_loss
    learner.fit(1)
    assert learner.cbstate.history["train"].steps == 8  # the original callbacks saw the fit
    assert len(learner.cbstate.metrics_epoch["train/Loss"]) == 1


# -- reproducibility, NaN, data -----------------------------------------------------------------


@pytest.mark.parametrize("seeded_loader", [False, True])
def test_two_seeded_calls_give_identical_curves_and_suggestions(seeded_loader):
    learner = classifier_learner(seeded_loader)  # dropout; shuffling by global or own RNG
    first = lr_find(learner, num_steps=40, seed=3)
    torch.manual_seed(999)
    random.seed(999)
    np.random.seed(999)
    next(iter(learner.data.train))  # moves the loader's generator on
    second = lr_find(learner, num_steps=40, seed=3)
    np.testing.assert_array_equal(first.lrs, second.lrs)
    np.testing.assert_array_equal(first.losses, second.losses)
    np.testing.assert_array_equal(first.smoothed_losses, second.smoothed_losses)
    assert first.suggestions == second.suggestions
    other = lr_find(learner, num_steps=40, seed=4)
    assert not np.array_equal(first.losses, other.losses)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_loss_ends_the_sweep_and_is_left_out_of_suggestions(bad):
    learner, _ = least_squares()
    learner = Learner(learner.model, learner.data, learner.optimizer, learner.loss_fn)
    optimizer = learner.optimizer

    def blows_up(outputs, targets):
        loss = torch.nn.functional.mse_loss(outputs, targets)
        return loss * bad if optimizer.param_groups[0]["lr"] > 1e-2 else loss

    learner.loss_fn = blows_up
    assert any(isinstance(cb, StopOnNaNLoss) for cb in learner.callbacks)
    result = lr_find(learner)
    assert result.lrs[-2] <= 1e-2 < result.lrs[-1]
    assert np.all(np.isfinite(result.losses[:-1]))
    assert result.losses[-1] == bad or np.isnan(result.losses[-1]) and np.isnan(bad)
    assert result.reason == f"the loss was {bad} at lr={result.lrs[-1]:.3g}"
    for lr in result.suggestions.values():
        assert 0 < lr <= 1e-2
    assert result.plot() is not None


def test_data_shorter_than_num_steps_is_cycled():
    batches = [(torch.full((2, 1), float(i)), torch.full((2, 1), float(i))) for i in range(3)]
    seen = []

    def loss_fn(outputs, targets):
        seen.append(int(targets[0, 0]))
        return torch.nn.functional.mse_loss(outputs, targets)

    learner = tiny_learner(loss_fn=loss_fn)
    result = lr_find(learner, num_steps=20, diverge=None, data=batches)
    assert seen == [0, 1, 2] * 6 + [0, 1]
    assert len(result.lrs) == 20 and result.reason == "completed all 20 steps"


def test_an_iterable_without_len_is_cycled_and_an_iterator_runs_out():
    batches = [(x, y) for x, y in tiny_learner().data.train]
    learner = tiny_learner()
    learner.data = learner.data._replace(train=Unsized(batches))
    assert len(lr_find(learner, num_steps=15, diverge=None).lrs) == 15
    with pytest.warns(RuntimeWarning, match="too few"):
        result = lr_find(learner, num_steps=15, data=iter(batches))
    assert result.reason == "the data ran out after 4 steps" and len(result.lrs) == 4
    learner.data = learner.data._replace(train=iter(batches))
    with pytest.raises(FluxTrainError, match="training data is an iterator"):
        lr_find(learner)
    with pytest.raises(FluxTrainError, match="yielded no batches"):
        lr_find(tiny_learner(), data=[])


def test_an_early_divergence_warns_that_suggestions_use_all_points():
    learner, critical = least_squares()
    with pytest.warns(RuntimeWarning, match="too few to leave out"):
        result = lr_find(learner, start=10 * critical, end=1e4, min_steps=10)
    assert len(result.lrs) < 16
    assert all(np.isfinite(list(result.suggestions.values())))


def test_a_negative_loss_does_not_stop_the_sweep_early():
    learner, critical = least_squares()
    learner.loss_fn = lambda outputs, targets: torch.nn.functional.mse_loss(outputs, targets) - 50
    result = lr_find(learner, start=1e-4)
    assert result.smoothed_losses.min() < 0
    assert critical < result.lrs[-1] < 10


# -- arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"start": 1.0, "end": 1.0}, r"start must be below end, got start=1.0, end=1.0"),
        ({"start": 2.0, "end": 1.0}, r"start must be below end.*swap them"),
        ({"start": 0.0}, r"start must be > 0 in mode='exp'.*got start=0.0"),
        ({"start": -1e-3, "mode": "linear"}, r"start must be >= 0, got start=-0.001"),
        ({"num_steps": 9}, r"num_steps must be an int >= 10, got 9"),
        ({"num_steps": 50.0}, r"num_steps must be an int >= 10, got 50.0"),
        (
            {"suggest": ("valley", "best")},
            r"suggest must name.*'valley'.*got \('valley', 'best'\) \(unknown 'best'\)",
        ),
        ({"suggest": ()}, r"suggest must name one or more"),
        ({"mode": "log"}, r"mode must be 'exp' or 'linear', got 'log'"),
        ({"diverge": 1.0}, r"diverge must be a number > 1 .* or None .*got 1.0"),
        ({"diverge": 0.5}, r"diverge must be a number > 1"),
        (
            {"smoothing": 1.0},
            r"smoothing must be a number with 0 <= smoothing < 1 or None, got 1.0",
        ),
        ({"smoothing": True}, r"smoothing must be .* or None, got True"),
        ({"min_steps": 0}, r"min_steps must be an int >= 1, got 0"),
        ({"min_steps": 101}, r"min_steps \(101\) must not exceed num_steps \(100\)"),
        ({"seed": 1.5}, r"seed must be an int or None, got 1.5"),
        ({"end": float("inf")}, r"end must be a finite number, got inf"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    learner = tiny_learner()
    before = learner.model.weight.detach().clone()
    with pytest.raises(FluxTrainError, match=match):
        lr_find(learner, **kwargs)
    assert torch.equal(before, learner.model.weight)


def test_the_learner_must_be_a_learner():
    with pytest.raises(FluxTrainError, match="learner must be a Learner, got Linear"):
        lr_find(torch.nn.Linear(1, 1))


# -- the result and its plot --------------------------------------------------------------------


def test_result_best_is_the_first_suggestion_asked_for():
    learner, _ = least_squares()
    result = lr_find(learner, suggest=("minimum", "valley"))
    assert list(result.suggestions) == ["minimum", "valley"]
    assert result.best == result.suggestions["minimum"]
    assert repr(result).startswith(f"LRFinderResult(steps={len(result.lrs)}, minimum=")


def test_plot_draws_a_log_x_curve_and_saves_a_png(tmp_path):
    learner, _ = least_squares()
    result = lr_find(learner)
    path = tmp_path / "lr_find.png"
    figure = result.plot(path)
    (ax,) = figure.axes
    assert ax.get_xscale() == "log"
    labels = ax.get_legend_handles_labels()[1]
    assert labels[:2] == ["loss", "smoothed loss"]
    names = [f"{name}: {lr:.2g}" for name, lr in result.suggestions.items()]
    assert labels[2:] == [names[0] + " (best)", *names[1:]]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_how_to_install_it(monkeypatch):
    result = LRFinderResult(np.ones(1), np.ones(1), np.ones(1), {"valley": 1.0}, "done")
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install fluxtrain\[plot\]"):
        result.plot()


# -- the suggestion rules -----------------------------------------------------------------------


def test_smooth_is_the_bias_corrected_moving_average():
    losses = np.array([4.0, 2.0, 8.0])
    beta = 0.5
    expected = [4.0, (0.25 * 4 + 0.5 * 2) / 0.75, (0.125 * 4 + 0.25 * 2 + 0.5 * 8) / 0.875]
    np.testing.assert_allclose(smooth(losses, beta), expected, rtol=1e-15)
    np.testing.assert_array_equal(smooth(losses, 0.0), losses)


LRS = np.geomspace(1e-4, 1.0, 9)
LOSSES = np.array([1.0, 0.99, 0.95, 0.8, 0.5, 0.3, 0.25, 0.6, 2.0])
LINE_LRS = np.geomspace(1e-3, 1.0, 20)


@pytest.mark.parametrize(
    "rule, lrs, losses, expected",
    [
        # the longest decreasing run is indices 0..6 (length 7): index 6 - 7 + 2 + 1 = 2
        (valley, LRS, LOSSES, LRS[2]),
        # a noisy run: 1.0 0.9 [1.1] 0.8 0.7 0.6 -> decreasing subsequence of 5 ending at 5
        (valley, np.arange(6.0), np.array([1.0, 0.9, 1.1, 0.8, 0.7, 0.6]), 1.0),
        # slopes per log step: the steepest fall is from index 3 to 4
        (steep, LRS, LOSSES, LRS[3]),
        (minimum, LRS, LOSSES, LRS[6] / 10),
        # valley at LRS[2], the lowest loss at LRS[6]: their geometric mean
        (midpoint, LRS, LOSSES, math.sqrt(LRS[2] * LRS[6])),
        # a straight line has a constant gradient: the slide stops at once, 15 points back
        (
            slide,
            np.geomspace(1e-3, 1.0, 20),
            np.linspace(2.0, 1.0, 20),
            np.geomspace(1e-3, 1, 20)[4],
        ),
        # a curve shorter than the window: the window shrinks to len - 1
        (slide, LRS, np.linspace(2.0, 1.0, 9), LRS[0]),
    ],
)
def test_suggestion_rules(rule, lrs, losses, expected):
    assert rule(lrs, losses) == expected


def test_slide_moves_left_past_a_kink():
    lrs = np.geomspace(1e-3, 1.0, 30)
    losses = np.concatenate([np.linspace(2.0, 1.0, 20), 1.0 + 0.5 * np.arange(1, 11) ** 2])
    # np.gradient is constant up to index 18; the window (right, right - 15) slides from
    # (29, 14) down to (19, 4), the last one whose ends differ, and stops at (18, 3).
    assert slide(lrs, losses) == lrs[4]


def test_cycle():
    assert list(Cycle([1, 2, 3], 7)) == [1, 2, 3, 1, 2, 3, 1]
    cycle = Cycle(iter([1, 2]), 5)
    assert list(cycle) == [1, 2] and cycle.ran_out and cycle.produced == 2


# -- the default: less lag, and the midpoint rule -------------------------------------------------


def test_midpoint_is_halfway_in_log_scale_between_valley_and_the_lowest_loss():
    assert midpoint(LRS, LOSSES) == pytest.approx(LRS[4], rel=1e-14)  # 10 ** -2 on the grid
    # a lowest loss inside the valley's run: the midpoint lies between its start and its end
    losses = np.array([1.0, 0.8, 0.6, 0.4, 0.2, 0.1, 0.05, 0.9])
    assert valley(LRS[:8], losses) == LRS[2]  # run of 7 ending at 6: 6 - 7 + 2 + 1
    assert midpoint(LRS[:8], losses) == math.sqrt(LRS[2] * LRS[6])


def test_bias_corrected_smoothing_of_a_ramp_is_its_closed_form_and_lags_a_tenth_of_the_sweep():
    """For losses ``x_i = i``, ``sum_k b^k (i - k) (1 - b) / (1 - b^(i+1))`` in closed form."""
    i = np.arange(100, dtype=float)
    for beta in (0.5, 0.9, 0.98):
        closed = i - beta * (1 - (i + 1) * beta**i + i * beta ** (i + 1)) / (
            (1 - beta) * (1 - beta ** (i + 1))
        )
        np.testing.assert_allclose(smooth(i, beta), closed, rtol=0, atol=1e-11)  # its rounding
    lag = i - smooth(i, default_smoothing(100))
    assert default_smoothing(100) == 0.9 and default_smoothing(10) == 0.0
    assert 8.99 < lag[-1] < 9.0  # beta / (1 - beta) = num_steps / 10 - 1 in the limit
    assert (i - smooth(i, 0.98))[-1] > 33.7  # fastai's fixed 0.98 at the end of 100 steps


@pytest.mark.parametrize("num_steps", [40, 100])
def test_the_default_smoothing_is_one_minus_ten_over_num_steps(num_steps):
    learner, _ = least_squares()
    result = lr_find(learner, num_steps=num_steps, diverge=None)
    beta = 1 - 10 / num_steps
    np.testing.assert_array_equal(result.smoothed_losses, smooth(result.losses, beta))
    explicit = lr_find(learner, num_steps=num_steps, diverge=None, smoothing=beta)
    assert explicit.suggestions == result.suggestions


def test_the_default_best_is_the_midpoint_of_the_trimmed_smoothed_curve():
    learner, _ = least_squares()
    result = lr_find(learner)
    n = len(result.lrs)
    lrs, curve = result.lrs[10 : n - 5], result.smoothed_losses[10 : n - 5]  # 100 // 10, 5
    lowest = lrs[int(np.argmin(curve))]
    assert result.suggestions["valley"] == valley(lrs, curve)
    assert result.best == result.suggestions["midpoint"] == math.sqrt(valley(lrs, curve) * lowest)
    assert suggest_lrs(["midpoint"], result.lrs, result.smoothed_losses, 10) == {
        "midpoint": result.best
    }
