"""Random states a run depends on: the global generators and those the data shuffles with.

:func:`rng_state` covers Python's ``random``, NumPy's global generator, torch's CPU generator
and, once CUDA is initialized, every CUDA device's. :func:`generators` finds the generators a
data iterable shuffles with (a ``DataLoader``'s sampler's ``generator``), so that its order
can be replayed: :func:`snapshot` is taken just before each epoch's ``iter(data)``.

Examples:
    >>> import random
    >>> state = rng_state()
    >>> first = random.random()
    >>> set_rng_state(state)
    >>> random.random() == first
    True
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..exceptions import CheckpointError


def rng_state(cuda: bool = True) -> dict[str, Any]:
    """The global random states: Python, NumPy, torch CPU and, if initialized, every CUDA device.

    Examples:
        >>> sorted(rng_state(cuda=False))
        ['numpy', 'python', 'torch']
    """
    kind, keys, position, has_gauss, gauss = np.random.get_state(legacy=True)  # type: ignore[misc]  # lists, so weights_only loads them
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, keys.tolist(), position, has_gauss, gauss),  # type: ignore[union-attr]
        "torch": torch.get_rng_state(),
    }
    if cuda and torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restores what :func:`rng_state` returned; CUDA states for the devices this process sees."""
    random.setstate(state["python"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        for device, cuda in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda, device)


def generators(data: Any) -> list[Any]:
    """The random generators a data iterable shuffles with, e.g. a DataLoader's sampler's.

    Looked up as the ``generator`` attribute of the data, of its ``sampler`` and of its
    ``batch_sampler`` and that one's ``sampler``; ``torch.Generator``, ``numpy.random.Generator``
    and ``random.Random`` are understood.

    Examples:
        >>> import torch
        >>> from torch.utils.data import DataLoader
        >>> loader = DataLoader(range(4), shuffle=True, generator=torch.Generator())
        >>> len(generators(loader))
        1
    """
    found: list[Any] = []
    batch_sampler = getattr(data, "batch_sampler", None)
    owners = (
        data,
        getattr(data, "sampler", None),
        batch_sampler,
        getattr(batch_sampler, "sampler", None),
    )
    for owner in owners:
        generator = getattr(owner, "generator", None) if owner is not None else None
        kinds = (torch.Generator, np.random.Generator, random.Random)
        if isinstance(generator, kinds) and not any(generator is g for g in found):
            found.append(generator)
    return found


def generator_states(data: Any) -> list[Any]:
    """The states of :func:`generators` of ``data``; :func:`set_generator_states` restores them.

    Examples:
        >>> import random
        >>> class Shuffled:
        ...     def __init__(self):
        ...         self.generator = random.Random(0)
        ...     def __iter__(self):
        ...         return iter(self.generator.sample(range(4), 4))
        >>> data = Shuffled()
        >>> states = generator_states(data)
        >>> first = list(data)
        >>> set_generator_states(data, states)
        >>> list(data) == first
        True
    """
    states: list[Any] = []
    for generator in generators(data):
        if isinstance(generator, torch.Generator):
            states.append(generator.get_state())
        elif isinstance(generator, np.random.Generator):
            states.append(copy.deepcopy(generator.bit_generator.state))
        else:
            states.append(generator.getstate())
    return states


def check_generators(data: Any, states: list[Any], what: str) -> None:
    """Raises unless ``data`` has as many :func:`generators` as ``states`` were saved from.

    No saved states (data without generators, or none known) fit any data.
    """
    found = generators(data)
    if states and len(found) != len(states):
        raise CheckpointError(
            f"The checkpoint's {what} data shuffled with {len(states)} random generator(s), this "
            f"{what} data has {len(found)}. Resume with the same data (a DataLoader built the "
            f"same way, with or without generator=...)."
        )


def set_generator_states(data: Any, states: list[Any]) -> None:
    """Restores :func:`generator_states` into ``data``'s generators."""
    if not states:
        return
    check_generators(data, states, "")
    for generator, state in zip(generators(data), states):
        if isinstance(generator, torch.Generator):
            generator.set_state(state)
        elif isinstance(generator, np.random.Generator):
            generator.bit_generator.state = state
        else:
            generator.setstate(state)


def snapshot(data: Any) -> dict[str, Any]:
    """The random states that decide how ``data`` iterates (CUDA's aside).

    The learner takes one just before each epoch's ``iter(data)``; a resumed fit restores it
    to replay the order of an interrupted epoch.

    Examples:
        >>> import torch
        >>> data = [1, 2, 3]
        >>> state = snapshot(data)
        >>> first = torch.rand(1)
        >>> restore(data, state)
        >>> torch.equal(torch.rand(1), first)
        True
    """
    return {"rng": rng_state(cuda=False), "data": generator_states(data)}


def restore(data: Any, state: Mapping[str, Any]) -> None:
    """Restores a :func:`snapshot` of ``data``."""
    set_rng_state(state["rng"])
    set_generator_states(data, state["data"])
