"""The schedule catalogue: the schedules of torch, MXNet, optax, Keras, HF and fastai as values.

Every entry returns a :class:`~fluxtrain.schedules.base.BaseSchedule` with a pure-Python
``scalar(t)`` and a vectorized ``array(t)``; they combine with ``+``, ``*`` and ``-``, ``shift`` and
``stretch``. ``docs/coming_from.md`` maps each peer's scheduler call to its spelling here.

Conventions:

- **Time.** ``t`` counts completed training steps from 0 (``unit="step"``, the default here,
  since the published counterparts count iterations); ``s(t)`` is the value the step after ``t``
  completed ones uses, which is what torch's optimizer holds after ``t`` calls to
  ``scheduler.step()``. MXNet counts updates from 1: its value at update ``t + 1`` is ours at ``t``.
- **Before 0** every schedule gives its value at 0. **After its end** a schedule holds its last
  value; only :mod:`cyclic <fluxtrain.schedules.cyclic>` schedules (``triangular``, ``cyclical``,
  ``sgdr``, ``loop``) rise again.
- **Warmups** never start at zero unless asked: ``warmup`` starts at the ``start_value`` given,
  ``warmup_stable_decay`` at ``peak / (warmup + 1)``, ``inverse_sqrt`` at ``start / warmup``.
- **Horizons.** A schedule wrapped by ``warmup`` starts when the warmup ends, so its lengths do
  not include the warmup (HF, optax and MXNet count their decay horizon from step 0: subtract
  the warmup). ``onecycle`` peaks at ``n * pct_start``; torch's ``OneCycleLR`` one step earlier
  (``onecycle_two_phase``).
- **Metrics.** ``reduce_on_plateau`` is the one schedule whose value depends on metrics, told by
  ``observe(metrics, t)`` at each epoch end; wrappers pass observations to the active piece only.

Examples:
    >>> import numpy as np
    >>> from fluxtrain.schedules import cosine, warmup
    >>> s = warmup(cosine(0.1, 0.0, 90), start_value=0.01, length=10)
    >>> s(np.array([0.0, 10.0, 55.0, 100.0]))
    array([0.01, 0.1 , 0.05, 0.  ])
"""

from __future__ import annotations

from .cyclic import cyclical as cyclical
from .cyclic import loop as loop
from .cyclic import sgdr as sgdr
from .cyclic import triangular as triangular
from .decays import constant as constant
from .decays import cosine as cosine
from .decays import exponential as exponential
from .decays import linear as linear
from .decays import poly as poly
from .decays import range_test as range_test
from .modifiers import cooldown as cooldown
from .modifiers import join as join
from .modifiers import warmup as warmup
from .onecycle import onecycle as onecycle
from .onecycle import onecycle_three_phase as onecycle_three_phase
from .onecycle import onecycle_three_phase_momentum as onecycle_three_phase_momentum
from .onecycle import onecycle_two_phase as onecycle_two_phase
from .onecycle import onecycle_two_phase_momentum as onecycle_two_phase_momentum
from .plateau import ReduceOnPlateau as ReduceOnPlateau
from .plateau import reduce_on_plateau as reduce_on_plateau
from .steps import from_list as from_list
from .steps import multistep as multistep
from .steps import step_decay as step_decay
from .warmups import inverse_sqrt as inverse_sqrt
from .warmups import warmup_stable_decay as warmup_stable_decay

__all__ = [
    "ReduceOnPlateau",
    "constant",
    "cooldown",
    "cosine",
    "cyclical",
    "exponential",
    "from_list",
    "inverse_sqrt",
    "join",
    "linear",
    "loop",
    "multistep",
    "onecycle",
    "onecycle_three_phase",
    "onecycle_three_phase_momentum",
    "onecycle_two_phase",
    "onecycle_two_phase_momentum",
    "poly",
    "range_test",
    "reduce_on_plateau",
    "sgdr",
    "step_decay",
    "triangular",
    "warmup",
    "warmup_stable_decay",
]
