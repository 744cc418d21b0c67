"""The Scheduler's clock: the "token" unit and epochs as passes over samples."""

from __future__ import annotations

import pytest
import torch

from fluxtrain import Learner, LearningRate, Schedule, ScheduleError, Scheduler
from fluxtrain.clock import ScheduleClock
from fluxtrain.easings import linear


def token_batches():
    # targets of -100 are padding; the tokens of a batch are its other targets
    lengths = [(3, 1), (4, 0), (2, 2), (5, 3)]  # (rows, padded rows)
    batches = []
    for rows, padded in lengths:
        targets = torch.ones(rows, 1)
        targets[:padded] = -100
        batches.append((torch.zeros(rows, 2), targets))
    return batches


def test_a_schedule_in_tokens_follows_the_tokens_of_completed_steps():
    def tokens(batch):
        return int((batch.targets != -100).sum())

    schedule = Schedule([0, 20], [0.0, 1.0], linear(), unit="token")
    model = torch.nn.Linear(2, 1)
    learner = Learner(
        model,
        token_batches(),
        torch.optim.SGD(model.parameters(), lr=0.0),
        lambda outputs, targets: outputs.sum() * 0,
        Scheduler({LearningRate: schedule}, tokens=tokens),
        usedefaultcallbacks=False,
    )
    learner.fit(2)
    # tokens per batch: 2, 4, 0, 2 -> before each step of 2 epochs: 0, 2, 6, 6, 8, 10, 14, 14
    expected = [t / 20 for t in (0, 2, 6, 6, 8, 10, 14, 14)]
    assert list(learner.cbstate.hyperparams["LearningRate"].values) == expected
    scheduler = next(c for c in learner.callbacks if isinstance(c, Scheduler))
    assert scheduler.clock.tokens == 16
    restored = ScheduleClock()
    restored.load_state_dict(scheduler.clock.state_dict())
    assert restored.times()[3:] == scheduler.clock.times()[3:] == (0, 16)  # sample, token


def test_a_token_unit_needs_a_tokens_function():
    with pytest.raises(ScheduleError, match="pass Scheduler\\(..., tokens=lambda batch"):
        Scheduler({LearningRate: Schedule([0, 1], [0.1, 0.0], unit="token")})
    with pytest.raises(ScheduleError, match="tokens must be a function"):
        Scheduler({LearningRate: 0.1}, tokens=5)


def test_epochs_as_passes_over_samples():
    clock = ScheduleClock()
    clock.samples_per_epoch = 10
    clock.start_fit(None, 2, 0)
    seen = []
    for samples in (4, 4, 2):
        seen.append(clock.times()[:4])
        clock.advance(samples=samples)
    clock.end_epoch()
    seen.append(clock.times()[:4])
    assert seen == [(0, 0.0, 0.0, 0), (1, 0.4, 0.2, 4), (2, 0.8, 0.4, 8), (3, 1.0, 0.5, 10)]
    again = ScheduleClock()
    again.samples_per_epoch = 10
    again.load_state_dict(clock.state_dict())
    again.start_fit(None, 2, 3)  # a resumed fit keeps the start of the fit it continues
    assert again.times() == clock.times()
