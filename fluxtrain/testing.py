"""A tiny learner for tests, so users can test their own callbacks in a few lines.

Examples:
    >>> from fluxtrain import Callback
    >>> class CountSteps(Callback):
    ...     def __init__(self):
    ...         self.steps = 0
    ...     def on_step_end(self, phase, learner):
    ...         self.steps += 1
    >>> counter = CountSteps()
    >>> _ = tiny_learner(counter, n_batches=4).fit(2)
    >>> counter.steps  # 4 training + 4 validation steps per epoch
    16
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from .callback import Callback
from .learner import Learner


def regression_data(
    n_batches: int = 4, batch_size: int = 8, slope: float = 3.0, seed: int = 0
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of ``(x, slope * x)`` with ``x`` of shape ``(batch_size, 1)``.

    Examples:
        >>> data = regression_data(2, 3)
        >>> len(data), tuple(data[0][0].shape)
        (2, (3, 1))
    """
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        x = torch.randn(batch_size, 1, generator=generator)
        batches.append((x, slope * x))
    return batches


class Unsized:
    """Re-iterable batches without ``len()``, like a stream: for testing that code needs no length.

    Examples:
        >>> data = Unsized(regression_data(2))
        >>> len(list(data)), hasattr(data, "__len__")
        (2, False)
    """

    def __init__(self, batches: list[Any]) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[Any]:
        return iter(self.batches)


def tiny_learner(
    *callbacks: Callback,
    n_batches: int = 4,
    batch_size: int = 8,
    validation: bool = True,
    lr: float = 0.01,
    optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    loss_fn: Callable[[Any, Any], torch.Tensor] = torch.nn.functional.mse_loss,
    usedefaultcallbacks: bool = False,
) -> Learner:
    """A learner fitting ``y = 3x`` with a one-weight linear model (no bias), starting at 0.

    Args:
        *callbacks: Callbacks to test.
        n_batches: Training (and validation) batches per epoch.
        batch_size: Samples per batch.
        validation: Also give validation data (other samples of the same line).
        lr: Learning rate of the optimizer.
        optimizer: ``optimizer(params, lr=lr)``; plain SGD by default.
        loss_fn: The loss; mean squared error by default.
        usedefaultcallbacks: Add the default callbacks (off, so tests see only theirs).
    """
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    build = optimizer or torch.optim.SGD
    train = regression_data(n_batches, batch_size, seed=0)
    data: Any = (train, regression_data(n_batches, batch_size, seed=1)) if validation else train
    return Learner(
        model,
        data,
        build(model.parameters(), lr=lr),
        loss_fn,
        *callbacks,
        usedefaultcallbacks=usedefaultcallbacks,
    )
