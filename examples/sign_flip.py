"""A toy non-stationarity schedule, written outside the package: every task flips sign
every `config.flip_every` steps (t -> -t keeps N(0, I_D) invariant).

Use it with `config.schedule = "examples.sign_flip"` and a `flip_every` field
(examples/toy_config.py).  README "Extending" walks through it.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from temporal_icl.core import data

PARAMETERS = ("flip_every",)  # the config fields this schedule reads
RESAMPLES = False  # tasks move; none is replaced by a fresh draw


class State(NamedTuple):
  tasks: jax.Array  # [M, D]
  flip_every: jax.Array  # int32 []


def init(key: jax.Array, config) -> State:
  return State(data.sample_task_set(key, config.M, config.D),
               jnp.asarray(config.flip_every, jnp.int32))


def update(state: State, step, key) -> State:
  del key
  flip = (step > 0) & (step % state.flip_every == 0)
  return state._replace(tasks=jnp.where(flip, -state.tasks, state.tasks))


def current_tasks(state: State) -> jax.Array:
  return state.tasks


def resample_steps(state: State) -> np.ndarray:
  del state
  return np.zeros((0,), np.int32)


def label(config) -> str:
  return f"flip every {config['flip_every']}"


def problems(config):
  if config.flip_every < 1:
    return [f"config.flip_every={config.flip_every} must be >= 1."]
  if data.is_infinite(config.M):
    return ["schedule 'examples.sign_flip' needs a finite task set (config.M >= 1)."]
  return []
