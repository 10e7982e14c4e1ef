"""A run's pieces, built from its config: model, head, schedule, optimiser, batches.

`build(config)` resolves everything the config names once (gin structure, head,
schedule module, learning-rate schedule); the training loop, the measurements,
the benchmarks and the analysis tools all start from the `Experiment` it returns.
"""

import contextlib
import importlib.resources
import os
from typing import Any, NamedTuple

from absl import logging
import gin
import haiku as hk
import jax
import jax.numpy as jnp
import ml_collections
import optax

from temporal_icl import data
from temporal_icl import heads
from temporal_icl import model as model_lib
from temporal_icl import schedules
from temporal_icl import streams
from temporal_icl import validation

stream_key = streams.key


class TrainState(NamedTuple):
  step: jax.Array  # int32 [], number of updates done
  params: Any  # haiku parameters
  opt_state: Any  # optax state
  schedule: Any  # the schedule module's State (task set and its bookkeeping)


def learning_rate(config: ml_collections.ConfigDict) -> optax.Schedule:
  """Linear warm-up from 0 over the first 10% of steps (if enabled), then constant;
  with lr_decay_fraction = f > 0, a linear decay to 0 over the last f·T steps.

  The paper trains at a constant rate after warm-up (f = 0).

  Not optax.warmup_constant_schedule: after the warm-up it returns the clipped
  ramp, which is not the peak exactly (0.0030000003 for 3e-3 at T = 4096, the
  demo, inside a jitted scan; measured 2026-11-25); the constant piece here is.
  """
  T = config.num_steps
  warmup_steps = int(0.1 * T) if config.lr_warmup else 0
  decay_steps = int(round(config.lr_decay_fraction * T))
  peak = config.learning_rate
  pieces, boundaries = [optax.constant_schedule(peak)], []
  if warmup_steps:
    pieces.insert(0, optax.linear_schedule(0.0, peak, warmup_steps))
    boundaries.append(warmup_steps)
  if decay_steps:
    pieces.append(optax.linear_schedule(peak, 0.0, decay_steps))
    boundaries.append(T - decay_steps)
  return optax.join_schedules(pieces, boundaries) if boundaries else pieces[0]


class Experiment(NamedTuple):
  """The pieces a run is built from, all derived from the config."""
  config: ml_collections.ConfigDict
  model: hk.Transformed
  head: Any
  schedule: Any  # a module of temporal_icl.schedules
  optimizer: optax.GradientTransformation
  lr: optax.Schedule

  def loss(self, params, xs: jax.Array, ys: jax.Array) -> jax.Array:
    """The training loss (the head's: MSE or NLL) of a batch xs [B, K, D], ys [B, K]."""
    return heads.loss(self.head, self.model.apply(params, xs, ys), ys)


def build(config: ml_collections.ConfigDict) -> Experiment:
  """The run's pieces, from a config in today's field names (train_and_evaluate and
  workdir.load_config move pre-0.2 names, once)."""
  lr = learning_rate(config)
  return Experiment(
      config=config,
      model=model_lib.make_model(config),
      head=heads.from_config(config),
      schedule=schedules.get(config.schedule),
      optimizer=optax.adam(lr),
      lr=lr)


def training_tasks(exp: Experiment, schedule_state) -> jax.Array:
  """The current task set [M, D] ([0, D] for M = ∞)."""
  return exp.schedule.current_tasks(schedule_state)


def training_batch(exp: Experiment, schedule_state, step, *, batch_size=None, start=0):
  """The batch of training step `step` drawn from the given task set: xs, ys."""
  c = exp.config
  key = jax.random.fold_in(stream_key(c.seed, "data"), step)
  return data.sample_sequences(key, training_tasks(exp, schedule_state),
                               batch_size or c.batch_size, c.K, c.noise_var, start=start)


def init_state(exp: Experiment) -> TrainState:
  c = exp.config
  schedule_state = exp.schedule.init(stream_key(c.seed, "tasks"), c)
  xs, ys = training_batch(exp, schedule_state, 0, batch_size=1)
  params = exp.model.init(stream_key(c.seed, "params"), xs, ys)
  return TrainState(jnp.zeros((), jnp.int32), params, exp.optimizer.init(params),
                    schedule_state)


def parse_gin(config: ml_collections.ConfigDict) -> None:
  """Parses the config's gin files and bindings.

  A gin file is a path (absolute or relative to the working directory) or, when no
  such file exists, "configs/<rest>": the file <rest> of the installed `configs`
  package (so "configs/model/paper.gin" works from any directory).

  Raises:
    validation.ConfigError: one sentence for a missing file or a bad binding.
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
      raise validation.ConfigError([f"gin file {name!r} does not exist (looked {looked})."])
    gin.clear_config()
    try:
      gin.parse_config_files_and_bindings(files, list(config.gin_bindings))
    except (ValueError, SyntaxError, KeyError) as e:
      first_line = str(e).strip().splitlines()[0]
      raise validation.ConfigError([f"gin: {first_line} (bindings: "
                                    f"{list(config.gin_bindings)})"]) from None

