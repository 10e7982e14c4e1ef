"""A run's pieces, built from its config: model, head, schedule, optimiser, batches.

`build(config)` resolves everything the config names once (gin structure, head,
schedule module); the training loop, the measurements, the benchmarks and the
analysis tools all start from the `Experiment` it returns.  One Experiment serves
a whole run group (temporal_icl.training.groups), built from the config of the
group's first run, so `Experiment.config` holds that run's values of the fields
that may differ between the group's runs (seed, γ, R, learning rate, M).  Code
that serves the group does not read those from it: each run's values are data,
in its `RunData` and TrainState.
"""

import contextlib
import functools
import importlib.resources
import os
from typing import Any, Dict, NamedTuple, Optional

import gin
import haiku as hk
import jax
import jax.numpy as jnp
import ml_collections
import optax

from temporal_icl.common import errors
from temporal_icl.common import metric_names as names
from temporal_icl.core import data
from temporal_icl.core import heads
from temporal_icl.core import model as model_lib
from temporal_icl.core import schedules
from temporal_icl.core import streams


class TrainState(NamedTuple):
  step: jax.Array  # int32 [], number of updates done
  params: Any  # haiku parameters
  opt_state: Any  # optax state
  schedule: Any  # the schedule module's State (task set and its bookkeeping)


class RunData(NamedTuple):
  """What distinguishes one run of a group from another, as arrays (a pytree)."""
  keys: Dict[str, jax.Array]  # the run's random streams (temporal_icl.core.streams), [2] each
  learning_rate: jax.Array  # float32 [], the peak rate
  num_tasks: jax.Array  # int32 [], M (tasks arrays may be padded past it); 0 for M = ∞


def run_data(config: ml_collections.ConfigDict) -> RunData:
  """The RunData of the run `config` describes."""
  M = 0 if data.is_infinite(config.M) else config.M
  keys = {name: streams.key(config.seed, name)
          for name in streams.names(config.get("measurements", ()))}
  return RunData(keys=keys,
                 learning_rate=jnp.asarray(config.learning_rate, jnp.float32),
                 num_tasks=jnp.asarray(M, jnp.int32))


def learning_rate(config: ml_collections.ConfigDict, peak=None) -> optax.Schedule:
  """Linear warm-up from 0 over the first 10% of steps (if enabled), then constant;
  with lr_decay_fraction = f > 0, a linear decay to 0 over the last f·T steps.

  peak: the rate after warm-up (default config.learning_rate); may be an array
  traced inside a group's step, with the same arithmetic as a Python float.
  The paper trains at a constant rate after warm-up (f = 0).

  Not optax.warmup_constant_schedule: after the warm-up it returns the clipped
  ramp, which is not the peak exactly (0.0030000003 for 3e-3 at T = 4096, the
  demo, inside a jitted scan; measured 2026-11-25); the constant piece here is.
  """
  T = config.num_steps
  warmup_steps = int(0.1 * T) if config.lr_warmup else 0
  decay_steps = int(round(config.lr_decay_fraction * T))
  peak = config.learning_rate if peak is None else peak
  pieces, boundaries = [optax.constant_schedule(peak)], []
  if warmup_steps:
    pieces.insert(0, optax.linear_schedule(0.0, peak, warmup_steps))
    boundaries.append(warmup_steps)
  if decay_steps:
    pieces.append(optax.linear_schedule(peak, 0.0, decay_steps))
    boundaries.append(T - decay_steps)
  return optax.join_schedules(pieces, boundaries) if boundaries else pieces[0]


class Experiment(NamedTuple):
  """The pieces a run (or a group of runs) is built from, all derived from the config."""
  config: ml_collections.ConfigDict
  model: hk.Transformed
  head: Any
  schedule: Any  # a module of temporal_icl.core.schedules

  def loss(self, params, xs: jax.Array, ys: jax.Array) -> jax.Array:
    """The training loss (the head's: MSE or NLL) of a batch xs [B, K, D], ys [B, K]."""
    return heads.loss(self.head, self.model.apply(params, xs, ys), ys)

  def learning_rate(self, peak=None) -> optax.Schedule:
    """The rate at each step, for the peak rate `peak` (default: the config's)."""
    return learning_rate(self.config, peak)

  def optimizer(self, peak=None) -> optax.GradientTransformation:
    """Adam with `learning_rate(peak)`; its state does not depend on the rate."""
    return optax.adam(self.learning_rate(peak))


def build(config: ml_collections.ConfigDict) -> Experiment:
  """The run's pieces, from a config."""
  return Experiment(
      config=config,
      model=model_lib.make_model(config),
      head=heads.from_config(config),
      schedule=schedules.get(config.schedule))


def training_tasks(exp: Experiment, schedule_state) -> jax.Array:
  """The current task set [M, D] ([0, D] for M = ∞; in a group, padded past M)."""
  return exp.schedule.current_tasks(schedule_state)


def step_metrics(exp: Experiment, state: TrainState, run: RunData,
                 loss=jnp.nan) -> Dict[str, jax.Array]:
  """What the training step reports of the state it reached (pure; for one run).

  train_loss: the step's loss (NaN for the state before any step); lr: the rate at
  the step count reached, the next update's (the rate the evaluation has always
  written at its steps); and the schedule's own metrics (schedules.metrics, e.g.
  mala/acceptance_rate), computed once here instead of again in the evaluation.
  """
  metrics = {names.TRAIN_LOSS: jnp.asarray(loss, jnp.float32),
             names.LR: exp.learning_rate(run.learning_rate)(state.step)}
  metrics.update(schedules.metrics(exp.schedule, state.schedule, run.num_tasks))
  return metrics


def training_batch(exp: Experiment, run: RunData, schedule_state, step, *,
                   batch_size=None, start=0):
  """The batch of training step `step` drawn from the given task set: xs, ys."""
  c = exp.config
  key = jax.random.fold_in(run.keys["data"], step)
  return data.sample_sequences(key, training_tasks(exp, schedule_state),
                               batch_size or c.batch_size, c.K, c.noise_var, start=start,
                               num_tasks=run.num_tasks)


def init_state(exp: Experiment, config: Optional[ml_collections.ConfigDict] = None
               ) -> TrainState:
  """The initial state of the run `config` (default: the experiment's own config)."""
  c = exp.config if config is None else config
  # One jitted program rather than ~80 eager ones (each compiled, or read from the
  # compilation cache, at every start); the values are the same bits.
  return jax.jit(functools.partial(_init_state, exp, c))(run_data(c))


def _init_state(exp: Experiment, c: ml_collections.ConfigDict, run: RunData
                ) -> TrainState:
  schedule_state = exp.schedule.init(run.keys["tasks"], c)
  xs, ys = training_batch(exp, run, schedule_state, 0, batch_size=1)
  params = exp.model.init(run.keys["params"], xs, ys)
  return TrainState(jnp.zeros((), jnp.int32), params, exp.optimizer().init(params),
                    schedule_state)


def parse_gin(config: ml_collections.ConfigDict) -> None:
  """Parses the config's gin files and bindings.

  A gin file is a path (absolute or relative to the working directory) or, when no
  such file exists, "configs/<rest>": the file <rest> of the installed `configs`
  package (so "configs/model/paper.gin" works from any directory).

  Raises:
    errors.ConfigError: one sentence for a missing file or a bad binding.
  """
  with contextlib.ExitStack() as stack:  # keeps any extracted resource until parsed
    files = []
    for name in config.gin_files:
      if os.path.exists(name):
        files.append(name)
        continue
      looked = (f"at {name}" if os.path.isabs(name)
                else f"in the working directory {os.getcwd()}")
      if name.startswith("configs/"):
        try:
          package = importlib.resources.files("configs")
        except ModuleNotFoundError:
          looked += " and found no installed configs package"
        else:
          resource = package
          for part in name[len("configs/"):].split("/"):
            resource = resource / part
          if resource.is_file():
            files.append(str(stack.enter_context(importlib.resources.as_file(resource))))
            continue
          looked += f" and in the installed configs package at {package}"
      raise errors.ConfigError([f"gin file {name!r} does not exist (looked {looked})."])
    gin.clear_config()
    try:
      gin.parse_config_files_and_bindings(files, list(config.gin_bindings))
    except (ValueError, SyntaxError, KeyError) as e:
      first_line = str(e).strip().splitlines()[0]
      raise errors.ConfigError([f"gin: {first_line} (bindings: "
                                    f"{list(config.gin_bindings)})"]) from None

