"""Dirichlet resampling: each task's run is cut into R segments of random length.

For each task independently, p ~ Dirichlet(1, ..., 1) (R components) and the T
training steps are split into R consecutive segments with integer lengths
proportional to p, rounded by the largest-remainder method: lengths
⌊p_s T⌋, plus one step for each of the T − Σ⌊p_s T⌋ segments with the largest
fractional parts, so that they sum to exactly T.  Segments may be empty.  A
fresh N(0, I_D) task is drawn for each segment (R − 1 replacements per task).
"""

import jax
import jax.numpy as jnp

from temporal_icl.core import data
from temporal_icl.core.schedules import segments

State = segments.State
update = segments.update
PARAMETERS = segments.PARAMETERS
RESAMPLES = segments.RESAMPLES
label = segments.label
problems = segments.problems
resample_steps = segments.resample_steps
PAD_VALUES = segments.PAD_VALUES


def largest_remainder_lengths(proportions: jax.Array, total: int) -> jax.Array:
  """Integer lengths [..., R] >= 0 summing to `total`, ≈ proportions · total."""
  exact = proportions * total
  floor = jnp.floor(exact)
  deficit = total - floor.sum(-1, keepdims=True)  # [..., 1]
  order = jnp.argsort(-(exact - floor), axis=-1)
  rank = jnp.argsort(order, axis=-1)  # rank of each fractional part, 0 = largest
  return (floor + (rank < deficit)).astype(jnp.int32)


def init(key: jax.Array, config) -> State:
  if data.is_infinite(config.M):
    raise ValueError("Resampling needs a finite task set; config.M = -1 means M = ∞.")
  if config.R < 1:
    raise ValueError(f"config.R={config.R}: Dirichlet resampling needs R >= 1 segments.")
  split_key, task_key = jax.random.split(key)
  proportions = jax.random.dirichlet(split_key, jnp.ones(config.R), (config.M,))
  lengths = largest_remainder_lengths(proportions, config.num_steps)  # [M, R]
  starts = jnp.cumsum(lengths, axis=-1) - lengths
  return segments.make_state(starts, task_key, config.D)


def current_tasks(state: State) -> jax.Array:
  return state.tasks
