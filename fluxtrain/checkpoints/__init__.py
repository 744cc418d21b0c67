"""Checkpoints: files, their manifest, atomic writes, the learner's state, its checks, resume.

- :mod:`~fluxtrain.checkpoints.atomic`: a file written whole or not at all;
- :mod:`~fluxtrain.checkpoints.manifest`: which files a folder holds, with their checksums;
- :mod:`~fluxtrain.checkpoints.files`: numbered checkpoint files, written and loaded;
- :mod:`~fluxtrain.checkpoints.rotation`: which of them a folder keeps;
- :mod:`~fluxtrain.checkpoints.learner_state`: what a learner saves to resume exactly;
- :mod:`~fluxtrain.checkpoints.checks`: whether a saved state fits a learner;
- :mod:`~fluxtrain.checkpoints.rng`: the random states a run depends on;
- :mod:`~fluxtrain.checkpoints.resume`: loading a state back and continuing a fit.

The :class:`~fluxtrain.Checkpointer` callback writes them during a fit.

Examples:
    >>> import tempfile
    >>> from fluxtrain.checkpoints import latest_checkpoint
    >>> latest_checkpoint(tempfile.mkdtemp()) is None
    True
"""

from .files import latest_checkpoint as latest_checkpoint
from .files import load_checkpoint as load_checkpoint
from .files import load_latest as load_latest
from .files import write_checkpoint as write_checkpoint
from .manifest import read_manifest as read_manifest

__all__ = [
    "latest_checkpoint",
    "load_checkpoint",
    "load_latest",
    "read_manifest",
    "write_checkpoint",
]
