"""Stationary: the task set is drawn once from N(0, I_D) and never changes.

With M = ∞ (config.M = -1) the state holds an empty task set [0, D]; tasks are
then drawn per sequence by temporal_icl.core.data.
"""

from typing import NamedTuple

import jax
import numpy as np

from temporal_icl.core import data


PARAMETERS = ()
RESAMPLES = False


def label(config) -> str:
  del config
  return "stationary"


def problems(config):
  del config
  return []


class State(NamedTuple):
  tasks: jax.Array  # [M, D]


def init(key: jax.Array, config) -> State:
  M = 0 if data.is_infinite(config.M) else config.M
  return State(data.sample_task_set(key, M, config.D))


def update(state: State, step, key) -> State:
  del step, key
  return state


def current_tasks(state: State) -> jax.Array:
  return state.tasks


def resample_steps(state: State) -> np.ndarray:
  del state
  return np.zeros((0,), np.int32)
