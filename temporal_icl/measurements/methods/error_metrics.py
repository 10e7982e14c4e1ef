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

from typing import Dict, Optional

import jax
import jax.numpy as jnp
import ml_collections

from temporal_icl.common import metric_names as names
from temporal_icl.core import baselines
from temporal_icl.core import data


def split_metrics(mean, ys, ridge_preds, dmmse_preds, *, D: int, prompt_length: int,
                  tail_start: Optional[int]) -> Dict[str, jax.Array]:
  """Errors and Δ_PT metrics of one batch.  All inputs [B, K]; returns scalars."""
  sq = lambda a, b: jnp.square(a - b)
  metrics = {
      names.error(names.MODEL): sq(mean, ys).mean(),
      names.error(names.RIDGE): sq(ridge_preds, ys).mean(),
      names.error(names.DMMSE): sq(dmmse_preds, ys).mean(),
      names.delta(names.DMMSE): sq(mean, dmmse_preds)[:, :prompt_length].mean() / D,
      names.delta(names.RIDGE): sq(mean, ridge_preds)[:, :prompt_length].mean() / D,
  }
  if tail_start is not None:
    metrics[names.delta_tail(names.DMMSE)] = sq(mean, dmmse_preds)[:, tail_start:].mean() / D
    metrics[names.delta_tail(names.RIDGE)] = sq(mean, ridge_preds)[:, tail_start:].mean() / D
  return metrics


def baselines_of(xs, ys, tasks, noise_var: float, num_tasks=None):
  """Ridge and dMMSE predictions [B, K] of a batch (dMMSE is ridge for M = ∞, [0, D])."""
  ridge = baselines.ridge(xs, ys, noise_var)
  if data.dmmse_is_ridge(tasks):
    return ridge, ridge
  return ridge, baselines.dmmse(xs, ys, tasks, noise_var, num_tasks)


def batch_metrics(exp, params, xs, ys, ridge_preds, dmmse_preds) -> Dict[str, jax.Array]:
  """Errors, Δ_PT (and NLL for probabilistic heads) of one batch, as scalars.

  exp: the run's experiment.Experiment (network, head, config).
  """
  c = exp.config
  raw = exp.model.apply(params, xs, ys)  # [B, K, P]
  metrics = split_metrics(exp.head.mean(raw), ys, ridge_preds, dmmse_preds, D=c.D,
                          prompt_length=c.delta_prompt_length, tail_start=c.delta_tail_start)
  if exp.head.is_probabilistic:
    metrics[names.NLL_MODEL] = exp.head.nll(raw, ys).mean()
  return metrics


def evaluate(exp, params, tasks, train_batch, test_batch, num_tasks=None
             ) -> Dict[str, jax.Array]:
  """Every train_* / test_* metric of the spec (pure; jit- and vmap-able).

  Args:
    exp: the run's experiment.Experiment.
    params: the model's parameters.
    tasks: the current training task set [M, D] ([0, D] for M = ∞), the dMMSE prior.
    train_batch: (xs [B, K, D], ys [B, K]) from the training distribution.
    test_batch: held-out (xs [N, K, D], ys [N, K]), tasks from N(0, I_D).
    num_tasks: M when `tasks` is padded past it (a run group).
  """
  nv = exp.config.noise_var
  out = {}
  for split, (xs, ys) in zip(names.SPLITS, (train_batch, test_batch)):
    metrics = batch_metrics(exp, params, xs, ys, *baselines_of(xs, ys, tasks, nv, num_tasks))
    out.update({names.on(split, k): v for k, v in metrics.items()})
  return out


def test_batch(config: ml_collections.ConfigDict, key: jax.Array):
  """The run's held-out sequences: eval_batch_size of them, tasks from N(0, I_D)."""
  return data.sample_sequences(key, data.infinite_task_set(config.D), config.eval_batch_size,
                               config.K, config.noise_var)
