"""Bayes-optimal predictions of y_k for every prefix: ridge and dMMSE.

Prediction k uses the pairs j < k and x_k only.  With σ² = noise_var:

Ridge (prior t ~ N(0, I_D)): the posterior mean of t after k pairs is
  w_k = (X_kᵀ X_k + σ² I)⁻¹ X_kᵀ y_k,   X_k = [x_0..x_{k-1}] [k, D],
and the prediction is x_k · w_k (0 at k = 0, the prior mean).

dMMSE (prior uniform over the task set {t_1..t_M}): task m has posterior weight
  π_km ∝ exp(−Σ_{j<k} (y_j − x_j·t_m)² / (2σ²)),
and the prediction is Σ_m π_km (x_k·t_m) (the task mean at k = 0).

Both are vectorised over prefixes with exclusive cumulative sums.
"""

import jax
import jax.numpy as jnp

from temporal_icl.common import arguments


def _exclusive_cumsum(a: jax.Array, axis: int = 1) -> jax.Array:
  """Σ_{j<k} a_j along `axis`."""
  return jnp.cumsum(a, axis=axis) - a


def _sequences(caller, xs, ys):
  """xs [B, K, D] and ys [B, K] as arrays, and their dims (ValueError otherwise)."""
  dims = {}
  xs = arguments.array(caller, "xs", xs, "B K D", dims)
  return xs, arguments.array(caller, "ys", ys, "B K", dims), dims


def ridge(xs: jax.Array, ys: jax.Array, noise_var: float) -> jax.Array:
  """Ridge posterior-mean predictions.  xs [B, K, D], ys [B, K] -> [B, K].

  Raises:
    TypeError, ValueError: xs or ys is not an array of these shapes.
  """
  xs, ys, _ = _sequences("baselines.ridge", xs, ys)
  D = xs.shape[-1]
  gram = _exclusive_cumsum(jnp.einsum("bki,bkj->bkij", xs, xs))  # [B, K, D, D]
  moment = _exclusive_cumsum(xs * ys[..., None])  # [B, K, D]
  precision = gram + noise_var * jnp.eye(D, dtype=xs.dtype)
  w = solve_spd(precision, moment)  # [B, K, D]
  return jnp.einsum("bkd,bkd->bk", xs, w)


def solve_spd(a: jax.Array, b: jax.Array) -> jax.Array:
  """x = a⁻¹ b for symmetric positive-definite a [..., D, D] and b [..., D].

  Cholesky a = L Lᵀ, then L z = b and Lᵀ x = z, one column (or entry) of the D
  at a time in plain jnp ops: 3D small steps, each vectorised over the batch.

  Not jnp.linalg.cholesky and cho_solve: on XLA's CPU backend they call LAPACK
  kernels (jaxlib 0.10.2) that split a large batch over the intra-op thread
  pool and block their pool thread until the pieces are done.  Two such calls
  running at once, as the train and test evaluations' two ridge solves do, can
  then hold both threads of a 2-core machine waiting for work that no thread is
  left to run: the process hangs with no CPU use (two [1024, 16, 8, 8] solves in
  one jit hung within 20 calls, every time; README "Benchmarks").
  """
  D = a.shape[-1]
  index = jnp.arange(D)
  L = jnp.zeros_like(a)
  for j in range(D):  # column j of L, from the columns k < j already in L
    s = a[..., :, j] - jnp.einsum("...ik,...k->...i", L, L[..., j, :])  # [..., D]
    pivot = jnp.sqrt(s[..., j:j + 1])  # [..., 1]
    column = jnp.where(index > j, s / pivot, jnp.where(index == j, pivot, 0))
    L = L.at[..., :, j].set(column)
  z = jnp.zeros_like(b)
  for i in range(D):  # L z = b, forward
    z = z.at[..., i].set((b[..., i] - jnp.sum(L[..., i, :] * z, -1)) / L[..., i, i])
  x = jnp.zeros_like(b)
  for i in reversed(range(D)):  # Lᵀ x = z, backward
    x = x.at[..., i].set((z[..., i] - jnp.sum(L[..., :, i] * x, -1)) / L[..., i, i])
  return x


def dmmse(xs: jax.Array, ys: jax.Array, tasks: jax.Array, noise_var: float,
          num_tasks=None) -> jax.Array:
  """dMMSE posterior-mean predictions.

  Args:
    xs: [B, K, D] inputs.
    ys: [B, K] targets.
    tasks: [M, D] the task set (uniform prior).
    noise_var: σ².
    num_tasks: the prior is uniform over tasks[:num_tasks] only (a run group's
      padded task set; may be traced).  Default: all of `tasks`.

  Returns:
    [B, K] predictions.

  Raises:
    TypeError, ValueError: xs, ys or tasks is not an array of these shapes,
      tasks is empty (M = ∞: the dMMSE prior is ridge's), or num_tasks is not
      a scalar.
  """
  caller = "baselines.dmmse"
  xs, ys, dims = _sequences(caller, xs, ys)
  tasks = arguments.array(caller, "tasks", tasks, "M D", dims)
  if tasks.shape[0] == 0:
    raise ValueError(f"{caller}: tasks must hold M >= 1 tasks; got {tasks.shape} (the "
                     "empty set stands for M = ∞, whose dMMSE is baselines.ridge).")
  if num_tasks is not None and jnp.ndim(num_tasks) != 0:
    raise ValueError(f"{caller}: num_tasks must be a scalar (or None); got "
                     f"{arguments.describe(num_tasks)}.")
  task_preds = jnp.einsum("bkd,md->bkm", xs, tasks)  # [B, K, M]
  sq_residuals = jnp.square(ys[..., None] - task_preds)  # [B, K, M]
  log_weights = -_exclusive_cumsum(sq_residuals) / (2 * noise_var)  # [B, K, M]
  if num_tasks is not None:
    log_weights = jnp.where(jnp.arange(tasks.shape[0]) < num_tasks, log_weights, -jnp.inf)
  weights = jax.nn.softmax(log_weights, axis=-1)
  return jnp.sum(weights * task_preds, axis=-1)
