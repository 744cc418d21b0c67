"""Assertions the tests share (this folder is on ``sys.path``, see ``conftest.py``)."""

from __future__ import annotations

import dataclasses

import torch


def assert_identical(a, b, where="state"):
    """Exact equality of nested containers, tensors compared with torch.equal."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    elif dataclasses.is_dataclass(a):
        assert_identical(dataclasses.asdict(a), dataclasses.asdict(b), where)
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
