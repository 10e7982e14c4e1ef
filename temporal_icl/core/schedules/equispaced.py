"""Equispaced resampling: R task sets shown over R equal-length segments.

All M tasks are replaced together at the R − 1 events k · (T // R), k = 1..R−1;
the last segment absorbs the remainder of T.
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


def init(key: jax.Array, config) -> State:
  if data.is_infinite(config.M):
    raise ValueError("Resampling needs a finite task set; config.M = -1 means M = ∞.")
  if config.R < 1:
    raise ValueError(f"config.R={config.R}: equispaced resampling needs R >= 1 segments.")
  period = config.num_steps // config.R
  starts = jnp.broadcast_to(jnp.arange(config.R, dtype=jnp.int32) * period,
                            (config.M, config.R))
  # One task set per segment: every task of segment s comes from the same (s) draw.
  return segments.make_state(starts, key, config.D)


def current_tasks(state: State) -> jax.Array:
  return state.tasks
