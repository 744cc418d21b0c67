"""GradientAccumulation's normalization: the accumulated gradient equals one big batch's."""

from __future__ import annotations

import pytest
import torch

from fluxtrain import Callback, FluxTrainError, Learner, Read, Schedule, Scheduler
from fluxtrain.batch_size import BatchSize
from fluxtrain.callbacks.accumulation import GradientAccumulation

TOLERANCE = dict(rtol=1e-6, atol=1e-7)  # float32 sums of 3 to 10 terms in another order


class Gradients(Callback):
    """The gradients just before each optimizer update (the micro-batches that accumulate end
    their step at GradientAccumulation's BackwardEnd, before this one)."""

    stateaccess = {"model": Read, "batch.updating": Read}
    runafter = (GradientAccumulation,)

    def __init__(self):
        self.seen = []

    def on_backward_end(self, phase, learner):
        self.seen.append([p.grad.clone() for p in learner.model.parameters()])


def batches(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 3, generator=g), torch.randn(n, 1, generator=g)) for n in sizes]


def big_batch_gradients(micro):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x = torch.cat([x for x, _ in micro])
    y = torch.cat([y for _, y in micro])
    torch.nn.functional.mse_loss(model(x), y).backward()
    return [p.grad for p in model.parameters()]


def learner(data, *callbacks):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    return Learner(
        model,
        data,
        torch.optim.SGD(model.parameters(), lr=0.0),  # the weights stay as they are
        torch.nn.functional.mse_loss,
        *callbacks,
        usedefaultcallbacks=False,
    )


def test_samples_normalization_of_unequal_micro_batches_equals_one_big_batch():
    micro = batches([3, 5, 2, 7, 1])  # two groups: [3, 5, 2] and the short last one [7, 1]
    grads = Gradients()
    learner(micro, GradientAccumulation(3, normalize="samples"), grads).fit(1)
    assert len(grads.seen) == 2  # one per update
    for got, group in zip(grads.seen, (micro[:3], micro[3:])):
        for a, b in zip(got, big_batch_gradients(group)):
            torch.testing.assert_close(a, b, **TOLERANCE)


def test_mean_normalization_is_wrong_for_unequal_sizes_which_samples_fixes():
    micro = batches([3, 5, 2])
    grads = Gradients()
    learner(micro, GradientAccumulation(3), grads).fit(1)
    mean_of_means = grads.seen[0][0]
    assert not torch.allclose(mean_of_means, big_batch_gradients(micro)[0], **TOLERANCE)


def test_mean_normalization_divides_a_short_last_group_by_its_own_length():
    micro = batches([4, 4, 4, 4, 4])  # groups of 3 and 2 equal micro-batches
    grads = Gradients()
    learner(micro, GradientAccumulation(3), grads).fit(1)
    assert len(grads.seen) == 2
    for got, group in zip(grads.seen, (micro[:3], micro[3:])):
        for a, b in zip(got, big_batch_gradients(group)):
            torch.testing.assert_close(a, b, **TOLERANCE)


def test_tokens_normalization_weighs_each_micro_batch_by_its_tokens():
    # a per-token loss: targets of -100 are padding and count neither in the loss nor as tokens
    g = torch.Generator().manual_seed(3)
    micro = []
    for n, pad in ((4, 1), (2, 0), (5, 3)):
        x, y = torch.randn(n, 3, generator=g), torch.randn(n, 1, generator=g)
        y[:pad] = -100
        micro.append((x, y))

    def loss(outputs, targets):
        keep = targets != -100
        return ((outputs - targets)[keep] ** 2).mean()

    def tokens(batch):
        return int((batch.targets != -100).sum())

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    grads = Gradients()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    accumulate = GradientAccumulation(3, normalize="tokens", tokens=tokens)
    Learner(model, micro, optimizer, loss, accumulate, grads, usedefaultcallbacks=False).fit(1)
    torch.manual_seed(0)
    reference = torch.nn.Linear(3, 1)
    x, y = torch.cat([x for x, _ in micro]), torch.cat([y for _, y in micro])
    loss(reference(x), y).backward()
    assert len(grads.seen) == 1
    for a, p in zip(grads.seen[0], reference.parameters()):
        torch.testing.assert_close(a, p.grad, **TOLERANCE)


def test_the_group_in_progress_survives_a_state_dict_round_trip():
    accumulate = GradientAccumulation(4, normalize="samples")
    accumulate._micro, accumulate._group, accumulate._count = 2, 3, 17
    other = GradientAccumulation(4, normalize="samples")
    other.load_state_dict(accumulate.state_dict())
    assert (other._micro, other._group, other._count) == (2, 3, 17)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n=2, normalize="sum"), "normalize must be one of mean, samples, tokens, got 'sum'"),
        (dict(n=2, normalize="tokens"), "normalize='tokens' needs tokens="),
        (dict(n=2, tokens=len), "normalize='tokens' needs tokens="),
        (dict(n=2, normalize="tokens", tokens=3), "needs tokens="),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(FluxTrainError, match=message):
        GradientAccumulation(**kwargs)


def test_batch_size_schedules_refuse_accumulation_at_fit_begin():
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*batches([8])[0]), 4)
    scheduler = Scheduler({BatchSize: Schedule([0, 1], [2, 4])})
    with pytest.raises(FluxTrainError, match="GradientAccumulation groups batches"):
        learner(data, scheduler, GradientAccumulation(2)).fit(1)
