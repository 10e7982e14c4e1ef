"""Periodic measurements of a run group: one module each, found by name.

A measurement module (here, or anywhere importable) defines

  build(context: Context) -> Optional[Measurement]

returning None when its config fields turn it off.  As in big_vision's evaluators
and flax's eval_step, a measurement computes and the training loop writes:

  name: str                            the label of its time in the progress report
  steps: Sequence[Set[int]]            for each run of the group, the steps it runs
                                       at (a step spec: temporal_icl.common.step_specs)
  compute(step, state, run, last_loss) -> Dict[str, Array]
                                       pure and jit-able, for ONE run: its TrainState
                                       after `step` updates, its RunData
                                       (experiment.RunData) and the training loss of
                                       the last step taken (NaN before the first);
                                       step is a traced int32.  The loop vmaps it over
                                       the group (or calls it per run, when only some
                                       runs are due) and hands each run its slice
  write(step, index, outputs)          host side, for run `index` of the group: write
                                       its outputs (host arrays) to its writer or its
                                       files
and, optionally,
  on_checkpoint(step, index)           run `index` is checkpointing `step`
  close()                              training is over (flush what is pending)

A measurement with nothing to compute (e.g. saving states) leaves compute out; its
write gets {} and reads `context.run_state(index)`.

`config.measurements` lists the modules a run uses: a plain name is a module of
this package, a dotted name (e.g. 'my_lab.my_measurement') is imported as is.
Each measurement draws randomness only from its own stream (temporal_icl.core.streams,
in RunData.keys), so turning one on or off never changes the training trajectory.
"""

import sys
import types
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Protocol, Sequence, Set

import ml_collections

from temporal_icl.common import registry


class RunContext(NamedTuple):
  """One run of the group, as its measurements see it."""
  config: ml_collections.ConfigDict  # the run's own config
  workdir: str
  writer: Any  # a clu.metric_writers.MetricWriter (logging only on processes > 0)
  start_step: int  # 0, or the step it restarts from
  initial_state: Any  # its TrainState at start_step (unpadded)


class Context(NamedTuple):
  """What a measurement is built from."""
  config: ml_collections.ConfigDict  # the fields every run of the group shares
  experiment: Any  # temporal_icl.core.experiment.Experiment
  runs: Sequence[RunContext]
  is_lead: bool  # process 0, the one that writes files
  run_state: Callable[[int], Any]  # index -> that run's current TrainState (unpadded)


class Measurement(Protocol):
  name: str
  steps: Sequence[Set[int]]

  def write(self, step: int, index: int, outputs: Dict[str, Any]) -> None:
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


def measure_once(name: str, config: ml_collections.ConfigDict, experiment: Any, state: Any,
                 writer: Any = None, workdir: str = "") -> Optional[Dict[str, Any]]:
  """Measurement `name` of the single run `config`, applied to `state` once, outside a
  training loop (tests, notebooks).  Returns its outputs as host arrays (None if the
  config turns it off or it computes nothing); with `writer`, also writes them."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from temporal_icl.core import experiment as experiment_lib  # pylint: disable=g-import-not-at-top

  class _Discard:
    def __getattr__(self, _):
      return lambda *args, **kwargs: None

  run = RunContext(config, workdir, writer or _Discard(), int(state.step), state)
  built = module(name).build(Context(config, experiment, [run], True, lambda i: state))
  if built is None or not hasattr(built, "compute"):
    return None
  outputs = jax.device_get(jax.jit(built.compute)(
      state.step, state, experiment_lib.run_data(config), jnp.float32(jnp.nan)))
  if writer is not None:
    built.write(int(state.step), 0, dict(outputs))
  return outputs
