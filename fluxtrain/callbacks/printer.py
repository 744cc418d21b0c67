"""MetricsPrinter: one readable table row per phase epoch.

Examples:
    >>> import io
    >>> from fluxtrain import Metrics
    >>> from fluxtrain.testing import tiny_learner
    >>> out = io.StringIO()
    >>> _ = tiny_learner(Metrics(), MetricsPrinter(file=out)).fit(1)
    >>> print(out.getvalue().splitlines()[0])
    epoch  phase        Loss
"""

from __future__ import annotations

import math
from typing import IO, Any

from tqdm.std import tqdm  # tqdm.auto warns in a kernel without ipywidgets

from ..access import Read
from ..callback import Callback
from ..distributed import is_main_process, world_size
from ..phases import Phase
from .metrics import Metrics


def format_value(value: Any) -> str:
    """A metric value in at most 10 characters; a tensor value (per class) by its shape.

    Examples:
        >>> import torch
        >>> format_value(0.123456), format_value(1234567.0), format_value(float("nan"))
        ('0.1235', '1.235e+06', 'nan')
        >>> format_value(torch.zeros(3, 3))
        '<3x3>'
    """
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape):
        return "<" + "x".join(map(str, shape)) + ">"
    value = float(value)
    if math.isnan(value):
        return "nan"
    return f"{value:.4f}" if 1e-3 <= abs(value) < 1e5 or value == 0 else f"{value:.4g}"


class MetricsPrinter(Callback):
    """Prints the epoch's metrics of each phase as a table row (header once).

    Under ``torch.distributed`` rank 0 prints; the values are those of all ranks (``Metrics``
    all-reduces them), which the header says (``all 4 ranks``).
    """

    stateaccess = {"cbstate.metrics_epoch": Read, "fitstate": Read}
    runafter = (Metrics,)

    def __init__(self, file: IO[str] | None = None) -> None:
        self.file = file
        self._columns: list[str] | None = None

    def on_epoch_end(self, phase: Phase, learner: Any) -> None:
        if "metrics_epoch" not in learner.cbstate or not is_main_process():
            return
        values = learner.cbstate.metrics_epoch
        prefix = phase.name + "/"
        row = {k[len(prefix) :]: v[-1] for k, v in values.items() if k.startswith(prefix) and v}
        if not row:
            return
        known = self._columns or []
        if self._columns is None or any(c not in known for c in row):
            self._columns = [*known, *(c for c in row if c not in known)]
            header = "epoch  phase  " + "".join(f"{c:>10}  " for c in self._columns)
            ranks = world_size()
            self._write(header.rstrip() + (f"  (all {ranks} ranks)" if ranks > 1 else ""))
        state = learner.fitstate
        epoch = state.total_epochs + 1 if phase.name == "train" else state.total_epochs
        cells = "".join(f"{format_value(row[c]) if c in row else '':>10}  " for c in self._columns)
        self._write(f"{max(epoch, 1):>5}  {phase.name:<5}  {cells}".rstrip())

    def _write(self, line: str) -> None:
        tqdm.write(line, file=self.file)
