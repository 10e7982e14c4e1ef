"""Errors, NLLs and Δ_PT metrics on training-distribution and held-out sequences.

For a batch with model predictive means ŷ [B, K], targets y [B, K] and baseline
predictions r (ridge) and d (dMMSE) [B, K]:

  error_model = mean_{b,k} (ŷ_bk − y_bk)²          (likewise error_ridge, error_dmmse)
  delta_ridge = mean_{b, k<L} (ŷ_bk − r_bk)² / D    with L = delta_prompt_length
  delta_tail_ridge = mean_{b, k≥k0} (ŷ_bk − r_bk)² / D   with k0 = delta_tail_start
  nll_model   = mean_{b,k} −log p(y_bk | pairs < k, x_k)   (probabilistic heads)

Metric names carry a split prefix: ``train_`` for a batch from the current
training task set, ``test_`` for a held-out batch whose tasks are drawn from
N(0, I_D) once per run.  dMMSE always uses the *current* training task set as
its prior; with M = ∞ that prior is N(0, I_D) and dMMSE coincides with ridge.
"""

import functools
from typing import Any, Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from temporal_icl import baselines
from temporal_icl import data


def split_metrics(mean, ys, ridge_preds, dmmse_preds, *, D: int, prompt_length: int,
                  tail_start: Optional[int]) -> Dict[str, jax.Array]:
  """Errors and Δ_PT metrics of one batch.  All inputs [B, K]; returns scalars."""
  sq = lambda a, b: jnp.square(a - b)
  metrics = {
      "error_model": sq(mean, ys).mean(),
      "error_ridge": sq(ridge_preds, ys).mean(),
      "error_dmmse": sq(dmmse_preds, ys).mean(),
      "delta_dmmse": sq(mean, dmmse_preds)[:, :prompt_length].mean() / D,
      "delta_ridge": sq(mean, ridge_preds)[:, :prompt_length].mean() / D,
  }
  if tail_start is not None:
    metrics["delta_tail_dmmse"] = sq(mean, dmmse_preds)[:, tail_start:].mean() / D
    metrics["delta_tail_ridge"] = sq(mean, ridge_preds)[:, tail_start:].mean() / D
  return metrics


class Evaluator:
  """Computes every train_* / test_* metric of the spec for given parameters.

  The held-out batch and its ridge predictions are made once; dMMSE predictions
  on it are recomputed only when the task set has changed since the last call.
  """

  def __init__(self, config: ml_collections.ConfigDict, apply_fn: Callable, head,
               test_key: jax.Array, test_batch: Optional[Tuple[Any, Any]] = None):
    """test_batch: fixed held-out (xs [N, K, D], ys [N, K]), e.g. a TFDS set;
    by default eval_batch_size sequences drawn with `test_key`."""
    self._config = config
    self._head = head
    self._infinite = data.is_infinite(config.M)
    nv = config.noise_var
    self._metrics = jax.jit(functools.partial(
        self._batch_metrics, apply_fn=apply_fn, head=head, D=config.D,
        prompt_length=config.delta_prompt_length, tail_start=config.delta_tail_start))
    self._ridge = jax.jit(lambda xs, ys: baselines.ridge(xs, ys, nv))
    self._dmmse = jax.jit(lambda xs, ys, tasks: baselines.dmmse(xs, ys, tasks, nv))
    if test_batch is None:
      test_batch = data.sample_sequences(
          test_key, data.infinite_task_set(config.D), config.eval_batch_size, config.K, nv)
    self.test_xs, self.test_ys = (jnp.asarray(a, jnp.float32) for a in test_batch)
    self._test_ridge = self._ridge(self.test_xs, self.test_ys)
    self._cached_tasks: Optional[np.ndarray] = None
    self._cached_test_dmmse = None

  @staticmethod
  def _batch_metrics(params, xs, ys, ridge_preds, dmmse_preds, *, apply_fn, head, D,
                     prompt_length, tail_start):
    raw = apply_fn(params, xs, ys)  # [B, K, P]
    metrics = split_metrics(head.mean(raw), ys, ridge_preds, dmmse_preds, D=D,
                            prompt_length=prompt_length, tail_start=tail_start)
    if head.is_probabilistic:
      metrics["nll_model"] = head.nll(raw, ys).mean()
    return metrics

  def _baselines(self, xs, ys, tasks):
    ridge = self._ridge(xs, ys)
    return ridge, (ridge if self._infinite else self._dmmse(xs, ys, tasks))

  def _test_dmmse(self, tasks):
    if self._infinite:
      return self._test_ridge
    host_tasks = np.asarray(tasks)
    if self._cached_tasks is None or not np.array_equal(host_tasks, self._cached_tasks):
      self._cached_tasks = host_tasks
      self._cached_test_dmmse = self._dmmse(self.test_xs, self.test_ys, tasks)
    return self._cached_test_dmmse

  def __call__(self, params, tasks, train_xs, train_ys) -> Dict[str, float]:
    """All metrics.  tasks [M, D] (ignored for M = ∞); train batch [B, K, D], [B, K]."""
    train = self._metrics(params, train_xs, train_ys,
                          *self._baselines(train_xs, train_ys, tasks))
    test = self._metrics(params, self.test_xs, self.test_ys, self._test_ridge,
                         self._test_dmmse(tasks))
    out = {f"train_{k}": v for k, v in train.items()}
    out.update({f"test_{k}": v for k, v in test.items()})
    return {k: float(v) for k, v in jax.device_get(out).items()}
