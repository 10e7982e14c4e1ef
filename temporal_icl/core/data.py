"""Task sets and in-context regression sequences, as pure functions of PRNG keys.

A sequence is K pairs (x_k, y_k) with x_k ~ N(0, I_D) and y_k = t·x_k + ε_k,
ε_k ~ N(0, σ²), for one task t per sequence.  The task comes either from a
finite task set T_M = {t_1, ..., t_M} (uniformly, with replacement) or, for
M = ∞, fresh from N(0, I_D) for every sequence.

M = ∞ is written ``M = -1`` in configs (``INFINITE_M``): ml_collections fields
keep one type, and -1 is otherwise invalid.  Inside the code M = ∞ has one
representation: the empty task set [0, D] (``infinite_task_set(D)``), which the
stationary schedule holds, which `sample_sequences` reads as "a fresh N(0, I_D)
task per sequence", and for which dMMSE is ridge.

Every example is generated from its own key ``fold_in(key, i)`` where i is the
example's index in the global batch.  A device holding examples [start, start+n)
of a batch therefore generates exactly the examples that a single device would,
so training data does not depend on the number of devices.
"""

import jax
import jax.numpy as jnp

INFINITE_M = -1


def is_infinite(M: int) -> bool:
  """True when M denotes the infinite (Gaussian) task distribution."""
  return M == INFINITE_M


def infinite_task_set(D: int) -> jax.Array:
  """The task set [0, D] that stands for M = ∞."""
  return jnp.zeros((0, D))


def is_infinite_set(tasks: jax.Array) -> bool:
  """True for the empty task set, i.e. M = ∞ (a static shape check)."""
  return tasks.shape[0] == 0


def dmmse_is_ridge(tasks: jax.Array) -> bool:
  """True for M = ∞ (the empty task set): the dMMSE prior is then the ridge prior
  N(0, I_D), so dMMSE predicts as ridge and its prior samples are ridge's.  The one
  place this is said: the error metrics and the energy distance ask here, and
  baselines.dmmse and predictive.sample_dmmse_prior refuse the empty set."""
  return is_infinite_set(tasks)


def sample_task_set(key: jax.Array, M: int, D: int) -> jax.Array:
  """Draws M tasks i.i.d. from N(0, I_D).  Returns tasks [M, D]."""
  return jax.random.normal(key, (M, D))


def _example(key, tasks, num_tasks, K: int, noise_var: float):
  """One sequence, its task from tasks[:num_tasks] ([M, D]).  Returns x [K, D], y [K], t [D]."""
  task_key, x_key, noise_key = jax.random.split(key, 3)
  task = tasks[jax.random.randint(task_key, (), 0, num_tasks)]
  return _pairs(x_key, noise_key, task, K, noise_var)


def _gaussian_example(key, D: int, K: int, noise_var: float):
  task_key, x_key, noise_key = jax.random.split(key, 3)
  task = jax.random.normal(task_key, (D,))
  return _pairs(x_key, noise_key, task, K, noise_var)


def _pairs(x_key, noise_key, task, K, noise_var):
  D = task.shape[0]
  xs = jax.random.normal(x_key, (K, D))
  noise = jnp.sqrt(noise_var) * jax.random.normal(noise_key, (K,))
  return xs, xs @ task + noise, task


def _example_keys(key: jax.Array, start, count: int) -> jax.Array:
  return jax.vmap(lambda i: jax.random.fold_in(key, i))(start + jnp.arange(count))


def sample_sequences(
    key: jax.Array,
    tasks: jax.Array,
    batch_size: int,
    K: int,
    noise_var: float,
    *,
    start=0,
    return_tasks: bool = False,
    num_tasks=None,
):
  """Samples a batch of in-context regression sequences.

  Args:
    key: PRNG key for the whole (global) batch.
    tasks: the task set [M, D]; tasks are drawn uniformly with replacement.
      The empty set [0, D] means M = ∞: each sequence gets a fresh task from
      N(0, I_D).
    batch_size: B, the number of sequences returned.
    K: pairs per sequence.
    noise_var: σ², the observation noise variance.
    start: index of the first returned example in the global batch (may be
      traced); devices holding a shard of the batch pass their offset.
    return_tasks: also return each sequence's task [B, D].
    num_tasks: M, when `tasks` is padded past it (a run group's task set; may be
      traced): tasks are drawn from tasks[:num_tasks].  Default: all of `tasks`.

  Returns:
    xs [B, K, D], ys [B, K] (and ts [B, D] when ``return_tasks``).
  """
  keys = _example_keys(key, start, batch_size)
  if is_infinite_set(tasks):
    D = tasks.shape[1]
    xs, ys, ts = jax.vmap(lambda k: _gaussian_example(k, D, K, noise_var))(keys)
  else:
    M = tasks.shape[0] if num_tasks is None else num_tasks
    xs, ys, ts = jax.vmap(lambda k: _example(k, tasks, M, K, noise_var))(keys)
  return (xs, ys, ts) if return_tasks else (xs, ys)
