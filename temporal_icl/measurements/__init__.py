"""Periodic measurements of a run group: one module each, found by name.

A measurement module (here, or anywhere importable) defines

  build(context: Context) -> Optional[Measurement]
                      None when its config fields turn it off; most modules write
                      `build = measurements.when_on(TheirClass)`
  problems(config) -> List[str]   (optional) one sentence per invalid value

A measurement is a subclass of `Measurement`.  As in big_vision's evaluators and
flax's eval_step, it computes and the training loop writes: it holds no writer.
It has

  name: str                            the label of its time in the progress report
  steps: Sequence[Set[int]]            for each run of the group, the steps it runs
                                       at (Measurement.__init__ sets them from the
                                       step spec `steps_field` names)
  compute(step, state, run, train) -> Dict[str, Array]
                                       pure and jit-able, for ONE run: its TrainState
                                       after `step` updates, its RunData
                                       (experiment.RunData) and what the last
                                       training step reported (experiment.step_metrics:
                                       train_loss, lr, the schedule's metrics; the
                                       loss is NaN before the first step); step is
                                       a traced int32.  The loop vmaps it over the
                                       group (or calls it per run, when only some
                                       runs are due)

and hooks whose defaults do nothing:

  artifacts: Tuple[str, ...]           outputs that are not scalars to write (they
                                       go to save_artifacts only)
  histograms(outputs) -> Dict[str, Array]   host side: histograms to write
  save_artifacts(step, index, outputs) host side, for run `index`: files or saved
                                       states (snapshots.npz, trajectory/), log lines
  on_checkpoint(step, index)           run `index` is checkpointing `step`
  close()                              training is over (finish what is pending)

The loop writes every output not named in `artifacts` as a scalar of the run's
own writer, at `step`, then the histograms; a measurement that returns one scalar
therefore is compute and a step spec, nothing else (examples/task_sum.py).  A
measurement with nothing to compute (e.g. saving states) leaves compute out; its
save_artifacts gets {} and reads `context.run_state(index)`.

`config.measurements` lists the modules a run uses: a plain name is a module of
this package, a dotted name (e.g. 'my_lab.my_measurement') is imported as is.
Each measurement draws randomness only from its own stream (temporal_icl.core.streams,
in RunData.keys; an outside one's is `run.keys[__name__]`), so turning
one on or off never changes the training trajectory.
"""

import dataclasses
import sys
import types
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

import ml_collections

from temporal_icl.common import registry
from temporal_icl.common import step_specs


class RunContext(NamedTuple):
  """One run of the group, as its measurements see it."""
  config: ml_collections.ConfigDict  # the run's own config
  workdir: str
  start_step: int  # 0, or the step it restarts from
  initial_state: Any  # its TrainState at start_step (unpadded)


@dataclasses.dataclass
class Context:
  """What a measurement is built from; what several need is made here once."""
  config: ml_collections.ConfigDict  # the fields every run of the group shares
  experiment: Any  # temporal_icl.core.experiment.Experiment
  runs: Sequence[RunContext]
  is_lead: bool  # process 0, the one that writes files
  run_state: Callable[[int], Any]  # index -> that run's current TrainState (unpadded)
  _cache: Dict[Any, Any] = dataclasses.field(default_factory=dict, repr=False)

  def steps(self, field: str) -> Set[int]:
    """The steps of the step spec `config.<field>` (parsed once per group)."""
    key = ("steps", field)
    if key not in self._cache:
      c = self.config
      self._cache[key] = frozenset(step_specs.parse(c[field], c.num_steps))
    return self._cache[key]

  def prior_sampler(self, num_samples: int, num_pairs: int):
    """predictive.make_prior_sampler of the group's network (its head built once)."""
    from temporal_icl.measurements.methods import predictive  # pylint: disable=g-import-not-at-top
    if "network" not in self._cache:
      self._cache["network"] = predictive.network(self.config, self.experiment.head)
    return predictive.make_prior_sampler(self.config, num_samples, num_pairs,
                                    net=self._cache["network"])


class Measurement:
  """The base of every measurement: the contract above, with no-op hooks."""
  name: str = ""
  steps_field: Optional[str] = None  # the config field of its step spec
  artifacts: Tuple[str, ...] = ()

  def __init__(self, context: Context):
    self.steps: Sequence[Set[int]] = [context.steps(self.steps_field)] * len(context.runs)

  def compute(self, step, state, run, train) -> Dict[str, Any]:
    """Pure, for one run: its outputs (scalars, and the arrays named in artifacts)."""
    del step, state, run, train
    return {}

  @property
  def computes(self) -> bool:
    """Whether the subclass computes anything (the loop skips the device otherwise)."""
    return type(self).compute is not Measurement.compute

  def histograms(self, outputs: Dict[str, Any]) -> Dict[str, Any]:
    del outputs
    return {}

  def save_artifacts(self, step: int, index: int, outputs: Dict[str, Any]) -> None:
    del step, index, outputs

  def on_checkpoint(self, step: int, index: int) -> None:
    del step, index

  def close(self) -> None:
    pass


def when_on(cls: Callable[[Context], Measurement]) -> Callable[[Context], Optional[Measurement]]:
  """build(context) for `cls`: None when its step spec (cls.steps_field) has no step."""
  def build(context: Context) -> Optional[Measurement]:
    return cls(context) if context.steps(cls.steps_field) else None
  return build


def spec_problems(config: ml_collections.ConfigDict, field: str,
                  when_on: Callable[[ml_collections.ConfigDict], List[str]] = lambda c: []
                  ) -> List[str]:
  """The step spec's problems, then (when it is valid and has steps) `when_on`'s."""
  found = step_specs.problems(field, config[field], config.num_steps)
  if found or not step_specs.parse(config[field], config.num_steps):
    return found
  return found + list(when_on(config))


def scalars(measurement: Measurement, outputs: Dict[str, Any]) -> Dict[str, float]:
  """The outputs the loop writes as scalars: all but the artifacts."""
  return {k: float(v) for k, v in outputs.items() if k not in measurement.artifacts}


def write(writer: Any, step: int, measurement: Measurement, outputs: Dict[str, Any]) -> None:
  """Writes one run's outputs (host arrays) of `measurement` with `writer`."""
  values = scalars(measurement, outputs)
  if values:
    writer.write_scalars(step, values)
  histograms = measurement.histograms(outputs)
  if histograms:
    writer.write_histograms(step, histograms)


def names() -> List[str]:
  """The measurements of this package (its public modules)."""
  return [n for n in registry.public_modules(sys.modules[__name__])
          if n not in ("metric_names",)]


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
    elif registry.part(measurement, "build") is None:
      found.append(f"config.measurements names {name!r}, a module without build(context).")
    else:
      found += registry.part(measurement, "problems", lambda config: [])(config)
  return found


def build_all(context: Context) -> List[Measurement]:
  """The measurements `context.config.measurements` turns on, in its order.

  Raises:
    TypeError: a module's build returned something that is not a Measurement.
  """
  built = []
  for name in context.config.measurements:
    measurement = module(name).build(context)
    if measurement is None:
      continue
    if not isinstance(measurement, Measurement):
      raise TypeError(f"measurement {name!r}: build(context) returned a "
                      f"{type(measurement).__name__}, not a measurements.Measurement.")
    built.append(measurement)
  return built


def measure_once(name: str, config: ml_collections.ConfigDict, experiment: Any, state: Any,
                 writer: Any = None, workdir: str = "") -> Optional[Dict[str, Any]]:
  """Measurement `name` of the single run `config`, applied to `state` once, outside a
  training loop (tests, notebooks).  Returns its outputs as host arrays (None if the
  config turns it off or it computes nothing); with `writer`, also writes them as the
  loop does."""
  import jax  # pylint: disable=g-import-not-at-top
  from temporal_icl.core import experiment as experiment_lib  # pylint: disable=g-import-not-at-top

  run = RunContext(config, workdir, int(state.step), state)
  built = module(name).build(Context(config, experiment, [run], True, lambda i: state))
  if built is None or not built.computes:
    return None
  data = experiment_lib.run_data(config)
  outputs = jax.device_get(jax.jit(lambda s, r: built.compute(
      s.step, s, r, experiment_lib.step_metrics(experiment, s, r)))(state, data))
  if writer is not None:
    step = int(state.step)
    write(writer, step, built, outputs)
    built.save_artifacts(step, 0, dict(outputs))
  return outputs
