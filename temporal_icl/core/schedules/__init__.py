"""Non-stationarity schedules: how the training task set moves during training.

A schedule is a module (here, or anywhere importable) with, all pure and jit-able:

  init(key, config) -> State            the initial task set and bookkeeping
  update(state, step, key) -> State     called inside the training step, once per
                                        step, before that step's batch is drawn
  current_tasks(state) -> [M, D]        the task set the batch is drawn from
  resample_steps(state) -> int32 [E]    (host) steps at which some task is replaced

and, for the host side,

  PARAMETERS: tuple of str              the config fields it reads (e.g. ('gamma',))
  RESAMPLES: bool                       whether tasks are replaced at events
  label(config) -> str                  its name in tables and figures, e.g. 'γ=0.01'
  problems(config) -> list of str       one sentence per invalid parameter value

and optionally

  metrics(state, num_tasks) -> dict     scalars the training step reports and the
                                        evaluation writes (e.g. MALA's acceptance
                                        rate); num_tasks is M
  PAD_VALUES: dict                      State field -> the value that pads it in a run
                                        group (temporal_icl.training.groups; default 0)

`config.schedule` names it: a plain name is a module of this package, a dotted
name (e.g. 'my_lab.my_schedule') is imported as is.  The list of schedules is
derived from this package's modules, never kept by hand.
"""

import sys
import types
from typing import List

from temporal_icl.common import registry

_REQUIRED = ("init", "update", "current_tasks", "resample_steps", "PARAMETERS",
             "RESAMPLES", "label", "problems")


def _is_schedule(module: types.ModuleType) -> bool:
  return all(registry.part(module, attr) is not None for attr in _REQUIRED)


def metrics(schedule: types.ModuleType, state, num_tasks) -> dict:
  """What `schedule` reports of its state (its optional metrics; {} without)."""
  return registry.part(schedule, "metrics", lambda state, num_tasks: {})(state, num_tasks)


def pad_values(schedule: types.ModuleType) -> dict:
  """State field -> the value that pads it in a run group (its optional PAD_VALUES)."""
  return registry.part(schedule, "PAD_VALUES", {})


def names() -> List[str]:
  """The schedules of this package (helper modules such as `segments` excluded)."""
  package = sys.modules[__name__]
  return [name for name in registry.public_modules(package)
          if _is_schedule(registry.find(package, name))]


def get(name: str) -> types.ModuleType:
  """The schedule module called `name` (ValueError, one sentence, if there is none)."""
  module = registry.find(sys.modules[__name__], name)
  if module is None or not _is_schedule(module):
    raise ValueError(f"config.schedule={name!r} is not a schedule; valid: "
                     f"{', '.join(names())}, or an importable module path.")
  return module


def label(config) -> str:
  """The run's non-stationarity as tables and figures show it (config: dict or ConfigDict)."""
  return get(config["schedule"]).label(config)
