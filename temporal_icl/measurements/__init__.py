"""Periodic measurements of a training run: one module each, found by name.

A measurement module (here, or anywhere importable) defines

  build(context: Context) -> Optional[Measurement]

returning None when its config fields turn it off.  A Measurement has

  name: str                        the label of its time in the progress report
  steps: Set[int]                  when it runs (a step spec: temporal_icl.step_specs)
  __call__(step, state, last_loss) measures the TrainState after `step` updates;
                                   last_loss is the training loss of the last step
                                   taken (None before the first)
and, optionally,
  on_checkpoint(step)              a checkpoint of `step` is being saved
  close()                          training is over (flush what is pending)

`config.measurements` lists the modules a run uses: a plain name is a module of
this package, a dotted name (e.g. 'my_lab.my_measurement') is imported as is.
Each measurement draws randomness only from its own stream (temporal_icl.streams),
so turning one on or off never changes the training trajectory.
"""

import sys
import types
from typing import Any, List, NamedTuple, Optional, Protocol, Set

import ml_collections

from temporal_icl import registry


class Context(NamedTuple):
  """What a measurement is built from."""
  config: ml_collections.ConfigDict
  experiment: Any  # temporal_icl.experiment.Experiment
  writer: Any  # a clu.metric_writers.MetricWriter (logging only on processes > 0)
  workdir: str
  state: Any  # the TrainState training starts (or resumes) from
  start_step: int  # 0, or the step a resumed run restarts from
  is_lead: bool  # process 0, the one that writes files


class Measurement(Protocol):
  name: str
  steps: Set[int]

  def __call__(self, step: int, state: Any, last_loss: Optional[float]) -> None:
    ...


def names() -> List[str]:
  """The measurements of this package (its public modules)."""
  return registry.public_modules(sys.modules[__name__])


def module(name: str) -> Optional[types.ModuleType]:
  """The measurement module `name` means, or None if it cannot be imported."""
  return registry.find(sys.modules[__name__], name)


def problems(config: ml_collections.ConfigDict) -> List[str]:
  """Config-validation sentences: unknown names, then each module's own checks."""
  found = []
  for name in config.measurements:
    measurement = module(name)
    if measurement is None:
      found.append(f"config.measurements names {name!r}, which is not a measurement; "
                   f"valid: {', '.join(names())}, or an importable module path.")
      continue
    if not hasattr(measurement, "build"):
      found.append(f"config.measurements names {name!r}, a module without build(context).")
    elif hasattr(measurement, "problems"):
      found += measurement.problems(config)
  return found


def build_all(context: Context) -> List[Measurement]:
  """The measurements `context.config.measurements` turns on, in its order."""
  built = []
  for name in context.config.measurements:
    measurement = module(name).build(context)
    if measurement is not None:
      built.append(measurement)
  return built
