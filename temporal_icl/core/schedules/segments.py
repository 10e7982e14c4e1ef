"""Shared machinery of the resampling schedules: tasks piecewise constant in time.

Task m is constant on segments [starts[m, s], starts[m, s+1]) of the T training
steps; on segment s it equals a fresh N(0, I_D) draw that is a deterministic
function of the init key, (m, s).  Segments may be empty; an empty segment is
never current.  Because the task at a step is a pure function of (state, step),
a resumed run sees exactly the tasks of an uninterrupted one.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from temporal_icl.core import data


class State(NamedTuple):
  starts: jax.Array  # int32 [M, R], start step of each segment; starts[:, 0] = 0
  segment: jax.Array  # int32 [M], index of the current segment of each task
  tasks: jax.Array  # [M, D], the current tasks
  task_key: jax.Array  # key from which segment tasks are drawn


def segment_task(task_key: jax.Array, m, s, D: int) -> jax.Array:
  """The task [D] of task m on segment s."""
  return jax.random.normal(jax.random.fold_in(jax.random.fold_in(task_key, m), s), (D,))


def _tasks_for(task_key, segment, D):
  return jax.vmap(lambda m, s: segment_task(task_key, m, s, D))(
      jnp.arange(segment.shape[0]), segment)


def make_state(starts: jax.Array, task_key: jax.Array, D: int) -> State:
  segment = segment_at(starts, 0)
  return State(starts, segment, _tasks_for(task_key, segment, D), task_key)


def segment_at(starts: jax.Array, step) -> jax.Array:
  """Current segment [M] at `step`: the last segment whose start is <= step."""
  return jnp.sum(starts <= step, axis=-1).astype(jnp.int32) - 1


def update(state: State, step, key=None) -> State:
  del key
  segment = segment_at(state.starts, step)
  D = state.tasks.shape[-1]
  tasks = jnp.where((segment == state.segment)[:, None], state.tasks,
                    _tasks_for(state.task_key, segment, D))
  return state._replace(segment=segment, tasks=tasks)


def resample_steps(state: State) -> np.ndarray:
  """Sorted steps at which at least one task is replaced."""
  starts = np.asarray(state.starts)[:, 1:].ravel()
  # A start at T (empty trailing segment) or a start shared with the previous
  # segment's (empty segment) replaces nothing on its own; np.unique over the
  # non-empty segments' starts gives the events.
  prev = np.asarray(state.starts)[:, :-1].ravel()
  return np.unique(starts[starts > prev]).astype(np.int32)


# ---- what the resampling schedules share on the host side --------------------

PARAMETERS = ("R",)
RESAMPLES = True
# In a run group (temporal_icl.training.groups) starts [M, R] is padded to the largest M and R:
# a padded segment starts at a step no run reaches, so it never becomes current.
PAD_VALUES = {"starts": np.iinfo(np.int32).max}


def label(config) -> str:
  """'R=10 (dirichlet)'."""
  return f"R={config['R']} ({config['schedule']})"


def problems(config):
  """Sentences for R and M, shared by the resampling schedules."""
  found = []
  if config.R < 0:
    found.append(f"config.R={config.R} must be >= 0 (resampling segments per task).")
  elif config.R == 0:
    found.append(f"config.R={config.R}: schedule={config.schedule!r} needs R >= 1 "
                 "segments per task (R = 1 is stationary; use schedule='stationary' for "
                 "no resampling).")
  if data.is_infinite(config.M):
    found.append(f"config.schedule={config.schedule!r} moves a finite task set, but "
                 f"config.M={config.M} means M = ∞; use schedule='stationary' with M = ∞.")
  return found
