"""Non-stationarity schedules: how the training task set moves during training.

Every schedule module exposes the same interface, all pure and jit-able:

  init(key, config) -> State            the initial task set and bookkeeping
  update(state, step, key) -> State     called inside the training step, once per
                                        step, before that step's batch is drawn
  current_tasks(state) -> [M, D]        the task set the batch is drawn from
  resample_steps(state) -> int32 [E]    (host) steps at which some task is replaced

`config.schedule` names the module; `get(name)` returns it.
"""

import types

from temporal_icl.schedules import dirichlet
from temporal_icl.schedules import equispaced
from temporal_icl.schedules import mala
from temporal_icl.schedules import stationary

_MODULES = {
    "stationary": stationary,
    "mala": mala,
    "dirichlet": dirichlet,
    "equispaced": equispaced,
}
NAMES = tuple(_MODULES)


def get(name: str) -> types.ModuleType:
  """The schedule module called `name`."""
  if name not in _MODULES:
    raise ValueError(f"Unknown schedule {name!r}; valid: {', '.join(NAMES)}.")
  return _MODULES[name]
