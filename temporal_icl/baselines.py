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


def _exclusive_cumsum(a: jax.Array, axis: int = 1) -> jax.Array:
  """Σ_{j<k} a_j along `axis`."""
  return jnp.cumsum(a, axis=axis) - a


def ridge(xs: jax.Array, ys: jax.Array, noise_var: float) -> jax.Array:
  """Ridge posterior-mean predictions.  xs [B, K, D], ys [B, K] -> [B, K]."""
  D = xs.shape[-1]
  gram = _exclusive_cumsum(jnp.einsum("bki,bkj->bkij", xs, xs))  # [B, K, D, D]
  moment = _exclusive_cumsum(xs * ys[..., None])  # [B, K, D]
  precision = gram + noise_var * jnp.eye(D, dtype=xs.dtype)
  chol = jnp.linalg.cholesky(precision)
  w = jax.scipy.linalg.cho_solve((chol, True), moment[..., None])[..., 0]  # [B, K, D]
  return jnp.einsum("bkd,bkd->bk", xs, w)


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
  """
  task_preds = jnp.einsum("bkd,md->bkm", xs, tasks)  # [B, K, M]
  sq_residuals = jnp.square(ys[..., None] - task_preds)  # [B, K, M]
  log_weights = -_exclusive_cumsum(sq_residuals) / (2 * noise_var)  # [B, K, M]
  if num_tasks is not None:
    log_weights = jnp.where(jnp.arange(tasks.shape[0]) < num_tasks, log_weights, -jnp.inf)
  weights = jax.nn.softmax(log_weights, axis=-1)
  return jnp.sum(weights * task_preds, axis=-1)
