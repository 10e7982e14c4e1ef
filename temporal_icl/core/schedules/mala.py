r"""MALA drift: each task takes one Metropolis-adjusted Langevin step per training step.

The target is π = N(0, I_D), so ∇log π(t) = −t and the Langevin proposal with
step size γ is

  t' = t + (γ/2) ∇log π(t) + √γ ξ = (1 − γ/2) t + √γ ξ,   ξ ~ N(0, I_D),

i.e. q(t' | t) = N(t'; (1 − γ/2) t, γ I).  Write a = 1 − γ/2.  The
Metropolis–Hastings log ratio log[π(t') q(t | t')] − log[π(t) q(t' | t)] is

  −½‖t'‖² + ½‖t‖² − (‖t − a t'‖² − ‖t' − a t‖²) / (2γ).

Expanding, ‖t − a t'‖² − ‖t' − a t‖² = (1 − a²)(‖t‖² − ‖t'‖²), and
1 − a² = γ − γ²/4, so the second term is (½ − γ/8)(‖t'‖² − ‖t‖²) and

  log α(t → t') = −(γ/8) (‖t'‖² − ‖t‖²).

A move is accepted with probability min(1, α).  The chain leaves N(0, I_D)
invariant for every γ > 0; γ = 0 proposes t' = t and leaves tasks unchanged.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from temporal_icl.common import metric_names as names
from temporal_icl.core import data


PARAMETERS = ("gamma",)
RESAMPLES = False


def label(config) -> str:
  """'γ=0.01', or 'stationary' for γ = 0 (no task ever moves)."""
  return f"γ={config['gamma']:g}" if config["gamma"] else "stationary"


def problems(config):
  found = []
  if config.gamma < 0:
    found.append(f"config.gamma={config.gamma} must be >= 0 (the MALA step size).")
  if data.is_infinite(config.M):
    found.append(f"config.schedule='mala' moves a finite task set, but config.M="
                 f"{config.M} means M = ∞; use schedule='stationary' with M = ∞.")
  return found


class State(NamedTuple):
  tasks: jax.Array  # [M, D]
  gamma: jax.Array  # float32 [], the step size γ
  accepted: jax.Array  # int32 [M], accepted moves per task so far
  proposed: jax.Array  # int32 [], moves proposed per task so far


def init(key: jax.Array, config) -> State:
  if data.is_infinite(config.M):
    raise ValueError("MALA drift needs a finite task set; config.M = -1 means M = ∞.")
  return State(
      tasks=data.sample_task_set(key, config.M, config.D),
      gamma=jnp.asarray(config.gamma, jnp.float32),
      accepted=jnp.zeros((config.M,), jnp.int32),
      proposed=jnp.zeros((), jnp.int32))


def log_acceptance_ratio(t: jax.Array, t_new: jax.Array, gamma) -> jax.Array:
  """log α(t → t_new) = −(γ/8)(‖t_new‖² − ‖t‖²).  t, t_new [..., D] -> [...]."""
  return -(gamma / 8) * (jnp.sum(t_new**2, -1) - jnp.sum(t**2, -1))


def update(state: State, step, key: jax.Array) -> State:
  del step
  noise_key, accept_key = jax.random.split(key)
  t, gamma = state.tasks, state.gamma
  proposal = (1 - gamma / 2) * t + jnp.sqrt(gamma) * jax.random.normal(noise_key, t.shape)
  log_u = jnp.log(jax.random.uniform(accept_key, t.shape[:1]))
  accept = log_u < log_acceptance_ratio(t, proposal, gamma)  # [M]
  return State(
      tasks=jnp.where(accept[:, None], proposal, t),
      gamma=gamma,
      accepted=state.accepted + accept.astype(jnp.int32),
      proposed=state.proposed + 1)


def current_tasks(state: State) -> jax.Array:
  return state.tasks


def acceptance_rate(state: State, num_tasks=None) -> jax.Array:
  """Fraction of proposals accepted so far, pooled over the first num_tasks tasks
  (default: all; in a run group the task set is padded past M)."""
  M = state.accepted.shape[0] if num_tasks is None else num_tasks
  accepted = jnp.where(jnp.arange(state.accepted.shape[0]) < M, state.accepted, 0)
  return accepted.sum() / (jnp.maximum(state.proposed, 1) * jnp.maximum(M, 1))


def metrics(state: State, num_tasks=None):
  """What the evaluation writes of the schedule: mala/acceptance_rate."""
  return {names.MALA_ACCEPTANCE_RATE: acceptance_rate(state, num_tasks)}


def resample_steps(state: State) -> np.ndarray:
  del state
  return np.zeros((0,), np.int32)
