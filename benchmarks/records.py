"""What recorded hyperparameter values cost, in memory and in checkpoints, as a fit gets long.

A ``Scheduler`` records ``(step, value)`` for each scheduled hyperparameter at every training
step, for the whole run, and every checkpoint saves them with the learner's ``cbstate``. This
fits the tiny one-weight learner of ``fluxtrain.testing`` for up to 200,000 steps with two
scheduled hyperparameters (learning rate and momentum) and, at several step counts, prints:

- the memory the records hold (``sys.getsizeof`` of every object in them, each counted once);
- the size of ``torch.save(learner.state_dict())`` and how long saving it takes (best of 3);

for the :class:`~fluxtrain.records.Record` the ``Scheduler`` keeps, and next to it for the list
of ``(step, value)`` tuples it kept before, built from the same values in the same run (a tuple
per value, a float per value and an int per step shared by the two lists, as the old
``Scheduler`` made them).

    python benchmarks/records.py                  # up to 200,000 steps, about a minute
    FLUXTRAIN_FAST=1 python benchmarks/records.py # up to 20,000 steps, a quick check
"""

from __future__ import annotations

import io
import os
import sys
import time
from typing import Any

import torch

from fluxtrain import LearningRate, Momentum, Scheduler
from fluxtrain.records import Record
from fluxtrain.schedules import cosine, linear
from fluxtrain.testing import tiny_learner

FAST = bool(os.environ.get("FLUXTRAIN_FAST"))
MILESTONES = (2_000, 5_000, 10_000, 20_000) if FAST else (10_000, 50_000, 100_000, 200_000)
EPOCH = 1_000  # training steps per epoch


def deep_size(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes of ``obj`` and of everything in it, each object counted once."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, Record):
        return size + deep_size(obj.steps, seen) + deep_size(obj.values, seen)
    if isinstance(obj, dict):
        return size + sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return size + sum(deep_size(item, seen) for item in obj)
    return size


def as_lists(records: dict[str, Record]) -> dict[str, list[tuple[int, float]]]:
    """The same values as lists of tuples, made the way the list-keeping Scheduler made them."""
    lists: dict[str, list[tuple[int, float]]] = {name: [] for name in records}
    columns = [(lists[name].append, record.values) for name, record in records.items()]
    for i, step in enumerate(next(iter(records.values())).steps):  # one int per step
        for append, values in columns:
            append((step, values[i]))  # a new float per value
    return lists


def save(state: dict[str, Any]) -> tuple[int, float]:
    """Bytes of ``torch.save(state)`` and the best of 3 times it takes, in milliseconds."""
    best = float("inf")
    for _ in range(3):
        buffer = io.BytesIO()
        start = time.perf_counter()
        torch.save(state, buffer)
        best = min(best, time.perf_counter() - start)
    return len(buffer.getvalue()), best * 1e3


def megabytes(n: float) -> str:
    return f"{n / 1e6:7.2f} MB"


def main() -> None:
    torch.set_num_threads(1)
    last = MILESTONES[-1]
    scheduler = Scheduler(
        {LearningRate: cosine(0.1, 1e-4, last), Momentum: linear(0.95, 0.85, last)}
    )
    learner = tiny_learner(scheduler, n_batches=EPOCH, batch_size=1, validation=False)
    print(f"torch {torch.__version__}, 2 scheduled hyperparameters, 1 value each per step")
    print(
        f"{'steps':>8} | {'records in memory':^37} | {'torch.save(learner.state_dict())':^37}"
        f" | {'save time':^17}"
    )
    print(
        f"{'':>8} | {'Record':>11} {'B/value':>7} {'list':>10} {'B/value':>7} |"
        f" {'Record':>11} {'B/value':>7} {'list':>10} {'B/value':>7} |"
        f" {'Record':>8} {'list':>8}"
    )
    for steps in MILESTONES:
        learner.fit((steps - learner.fitstate.step) // EPOCH)
        records = learner.cbstate.hyperparams
        lists = as_lists(records)
        n_values = sum(len(record) for record in records.values())
        state = learner.state_dict()
        old_state = {**state, "cbstate": {**state["cbstate"], "hyperparams": lists}}
        in_memory = [deep_size(records), deep_size(lists)]
        (saved, saving), (old_saved, old_saving) = save(state), save(old_state)
        base, _ = save({**state, "cbstate": {**state["cbstate"], "hyperparams": {}}})
        print(
            f"{steps:>8,} | {megabytes(in_memory[0])} {in_memory[0] / n_values:7.1f}"
            f" {megabytes(in_memory[1])} {in_memory[1] / n_values:7.1f} |"
            f" {megabytes(saved)} {(saved - base) / n_values:7.1f}"
            f" {megabytes(old_saved)} {(old_saved - base) / n_values:7.1f} |"
            f" {saving:5.1f} ms {old_saving:5.1f} ms"
        )
    print("B/value: bytes per recorded value; in the checkpoint, beyond the state without records")


if __name__ == "__main__":
    main()
