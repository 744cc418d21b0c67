"""The picture of a learning-rate range test: the loss against the learning rate, suggestions
marked.

matplotlib is an optional extra (``pip install fluxtrain[plot]``); the figure is built without
``pyplot``, shows itself in a Jupyter notebook (:func:`~fluxtrain.plots.new_figure`), and
``path=`` saves a PNG.

Examples:
    >>> from fluxtrain.lr_finder import lr_find
    >>> from fluxtrain.testing import tiny_learner
    >>> figure = plot_lr_find(lr_find(tiny_learner(), seed=0))
    >>> figure.axes[0].get_xlabel()
    'learning rate'
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from .suggestions import SUGGESTIONS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .suggestions import LRFinderResult


def plot_lr_find(result: LRFinderResult, path: str | os.PathLike[str] | None = None) -> Figure:
    """The curve of ``result`` (see :meth:`LRFinderResult.plot`)."""
    from ..plots import new_figure

    figure = new_figure("LRFinderResult.plot", figsize=(7.0, 4.2), layout="constrained")
    finite = np.isfinite(result.smoothed_losses)
    lrs, raw, smoothed = result.lrs[finite], result.losses[finite], result.smoothed_losses[finite]
    ax = figure.add_subplot()
    ax.plot(lrs, raw, color="0.75", linewidth=1.0, label="loss")
    ax.plot(lrs, smoothed, color="C0", linewidth=2.0, label="smoothed loss")
    log_x = len(lrs) > 0 and lrs[0] > 0
    scale = np.log if log_x else np.asarray  # markers on the drawn line, in the axis' scale
    for index, (name, lr) in enumerate(result.suggestions.items()):
        if np.isfinite(lr) and len(lrs):
            y = np.interp(scale(lr), scale(lrs), smoothed)
            color = f"C{list(SUGGESTIONS).index(name) + 1}"
            label = f"{name}: {lr:.2g}" + (" (best)" if index == 0 else "")
            ax.plot([lr], [y], "o", markersize=9 if index == 0 else 7, color=color, label=label)
    if log_x:
        ax.set_xscale("log")
    if len(smoothed):  # from the lowest loss to the highest smoothed loss before the minimum
        low = min(raw.min(), smoothed.min())
        high = smoothed[: int(np.argmin(smoothed)) + 1].max()
        margin = 0.08 * (high - low) or 0.05 * abs(high) or 0.05
        ax.set_ylim(low - margin, high + 2 * margin)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(f"Learning-rate range test: {result.reason}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure
