"""BatchSize: planned batch sizes, every sample once per epoch, units that stay right, resume."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from fluxtrain import (
    BatchSize,
    Callback,
    Checkpointer,
    HyperParameterError,
    Learner,
    LearningRate,
    Read,
    Recorder,
    Schedule,
    ScheduleError,
    Scheduler,
)
from fluxtrain.easings import linear

N = 20
# Schedule([0, 1], [2, 6]) in epochs over 20 samples; an epoch's time is e + seen / 20 and the
# size the nearest integer of 2 + 4 * time (6 from epoch 1 on), the last batch what is left:
#   epoch 0: seen 0, 2, 4, 7, 10, 14, 19 -> time 0, .1, .2, .35, .5, .7, .95
#            -> 2 + 4 * time = 2, 2.4, 2.8, 3.4, 4, 4.8, 5.8 -> 2, 2, 3, 3, 4, 5, (6 ->) 1
#   epoch 1: seen 0, 6, 12, 18 -> time 1, 1.3, 1.6, 1.9 -> 6, 6, 6, (6 ->) 2
SIZES = [[2, 2, 3, 3, 4, 5, 1], [6, 6, 6, 2]]
TIMES = [0, 0.1, 0.2, 0.35, 0.5, 0.7, 0.95, 1, 1.3, 1.6, 1.9]
RAMP = Schedule([0, 1], [2, 6], linear())


class Batches(Callback):
    """The sample indices of every training batch, per epoch."""

    stateaccess = {"batch.targets": Read}

    def __init__(self):
        self.epochs = []

    def on_epoch_begin(self, phase, learner):
        if phase.name == "train":
            self.epochs.append([])

    def on_step_begin(self, phase, learner):
        if phase.name == "train":
            if not self.epochs:  # a resumed fit continues an epoch begun before
                self.epochs.append([])
            self.epochs[-1].append(learner.batch.targets[:, 0].long().tolist())


class StopAt(Callback):
    """Raises KeyboardInterrupt at the k-th training StepEnd (never for k = 0)."""

    def __init__(self, k):
        self.k, self.calls = k, 0

    def on_step_end(self, phase, learner):
        if phase.name == "train":
            self.calls += 1
            if self.calls == self.k:
                raise KeyboardInterrupt


def loader(shuffle=True, drop_last=False, workers=0):
    index = torch.arange(float(N)).unsqueeze(1)
    data = TensorDataset(torch.randn(N, 2, generator=torch.Generator().manual_seed(0)), index)
    generator = torch.Generator().manual_seed(3) if shuffle else None
    return DataLoader(
        data,
        batch_size=4,
        shuffle=shuffle,
        generator=generator,
        drop_last=drop_last,
        num_workers=workers,
    )


def learner(data, *callbacks, sizes=RAMP, lr=None, folder=None):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Dropout(0.1), torch.nn.Linear(4, 1))
    schedules = {BatchSize: sizes}
    schedules[LearningRate] = lr if lr is not None else lambda t: 0.01 / (1 + t)
    extra = [Checkpointer(folder, every_steps=1)] if folder is not None else []

    def loss(outputs, targets):  # the targets' second column is the sample index
        return torch.nn.functional.mse_loss(outputs, torch.zeros_like(outputs))

    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return Learner(
        model,
        data,
        optimizer,
        loss,
        Scheduler(schedules),
        Recorder(),
        *callbacks,
        *extra,
        usedefaultcallbacks=False,
    )


def test_each_epoch_takes_every_sample_once_in_the_planned_sizes():
    batches = Batches()
    run = learner(loader(), batches)
    run.fit(2)
    assert [[len(b) for b in epoch] for epoch in batches.epochs] == SIZES
    plain = loader()  # the same sampler and generator, in batches of 4
    for epoch in batches.epochs:  # the sampler's own order, cut into the planned sizes
        order = [int(i) for _, index in plain for i in index[:, 0]]
        assert [i for batch in epoch for i in batch] == order
    record = run.cbstate.hyperparams["BatchSize"]
    assert list(record.values) == [2, 2, 3, 3, 4, 5, 6, 6, 6, 6, 6]  # the schedule's values
    assert run.fitstate.total_steps == 11


def test_the_epoch_unit_counts_passes_over_the_samples():
    run = learner(loader(), lr=Schedule([0, 2], [0.0, 1.0], linear()))
    run.fit(2)
    values = run.cbstate.hyperparams["LearningRate"].values
    assert list(values) == pytest.approx([t / 2 for t in TIMES], abs=1e-15)
    fraction = learner(loader(), lr=Schedule([0, 1], [0.0, 1.0], linear(), unit="fraction"))
    fraction.fit(2)
    assert list(fraction.cbstate.hyperparams["LearningRate"].values) == list(values)


def test_drop_last_drops_the_short_batch_and_the_next_epoch_starts_at_its_integer():
    batches = Batches()
    run = learner(loader(drop_last=True), batches, lr=Schedule([0, 2], [0.0, 1.0], linear()))
    run.fit(2)
    assert [[len(b) for b in epoch] for epoch in batches.epochs] == [[2, 2, 3, 3, 4, 5], [6] * 3]
    lrs = list(run.cbstate.hyperparams["LearningRate"].values)
    assert lrs == pytest.approx([t / 2 for t in TIMES[:6] + TIMES[7:10]], abs=1e-15)


def test_workers_get_the_same_batches():
    with_workers, without = Batches(), Batches()
    learner(loader(workers=2), with_workers).fit(2)
    learner(loader(), without).fit(2)
    assert with_workers.epochs == without.epochs


def test_simulate_plans_what_the_fit_applies():
    run = learner(loader(), lr=Schedule([0, 2], [0.0, 1.0], linear()))
    scheduler = next(c for c in run.callbacks if isinstance(c, Scheduler))
    planned = scheduler.simulate(2, samples_per_epoch=N)
    run.fit(2)
    for name, values in planned.items():
        assert list(values) == list(run.cbstate.hyperparams[name].values)


def test_interrupted_mid_epoch_resumes_bitwise(tmp_path):
    reference_batches = Batches()
    reference = learner(loader(), reference_batches, StopAt(0))
    reference.fit(2)
    stopped = learner(loader(), Batches(), StopAt(4), folder=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        stopped.fit(2)
    batches = Batches()
    resumed = learner(loader(), batches, StopAt(0), folder=tmp_path)
    resumed.fit(2, resume="latest")
    for a, b in zip(resumed.model.state_dict().values(), reference.model.state_dict().values()):
        assert torch.equal(a, b)
    for name in ("BatchSize", "LearningRate"):
        got, want = resumed.cbstate.hyperparams[name], reference.cbstate.hyperparams[name]
        assert (list(got.steps), list(got.values)) == (list(want.steps), list(want.values))
    # the resumed fit continues the first epoch after its 4th batch, in the same sizes
    assert batches.epochs[0] == reference_batches.epochs[0][4:]
    assert batches.epochs[1] == reference_batches.epochs[1]


def test_training_data_that_cannot_be_rechunked_is_refused_at_the_fit_start():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter([(torch.zeros(2), torch.zeros(1))] * 4)

    cases = [
        ([(torch.zeros(2, 2), torch.zeros(2, 1))], "the training data is a list"),
        (DataLoader(Stream(), batch_size=2), "this one has an IterableDataset"),
        (DataLoader(range(8), batch_size=None), "this one has no batch_size"),
    ]
    for data, message in cases:
        with pytest.raises(HyperParameterError, match=message):
            learner(data).fit(1)


def test_batch_sizes_below_one_stop_at_the_epoch_start():
    with pytest.raises(ScheduleError, match="BatchSize must be 1 <= value < inf"):
        learner(loader(), sizes=Schedule([0, 1], [2, 0])).fit(2)


def test_a_batch_size_schedule_in_tokens_is_refused_at_construction():
    with pytest.raises(ScheduleError, match="BatchSize schedule cannot be in unit 'token'"):
        Scheduler({BatchSize: Schedule([0, 1], [2, 4], unit="token")}, tokens=len)


def test_plot_schedule_draws_the_planned_steps():
    pytest.importorskip("matplotlib")
    from fluxtrain import plot_schedule

    scheduler = Scheduler({BatchSize: RAMP})
    figure = plot_schedule(scheduler, 2, 5, samples_per_epoch=N)
    (line,) = figure.axes[0].get_lines()
    assert list(line.get_xdata()) == list(range(11))
    assert list(line.get_ydata()) == [2, 2, 3, 3, 4, 5, 6, 6, 6, 6, 6]
