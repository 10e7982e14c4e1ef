"""Measurements of the implicit prior run periodically inside the training loop.

`EnergyDistance` writes energy_dist/prior/{ridge,dmmse} and per-dimension
histograms prior/dim_i of the PMC task samples.  `PriorSnapshots` records the
prior-tracking snapshots of temporal_icl.snapshots.  `LocalLearningCoefficient`
writes llc/{mean,std,loss_below_init_fraction}.  Each draws from its own
random stream (temporal_icl.streams), keyed by step.
"""

from typing import Callable, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from temporal_icl import baselines
from temporal_icl import data
from temporal_icl import energy
from temporal_icl import evaluation
from temporal_icl import heads
from temporal_icl import llc
from temporal_icl import prior
from temporal_icl import snapshots
from temporal_icl import streams

SNAPSHOT_BATCH_SIZE = 256  # sequences of the per-snapshot Δ_PT batch


def _reference_samples(config, tasks, key, n):
  """Samples [n, D] of the ridge prior and of the dMMSE prior (current tasks)."""
  ridge_key, dmmse_key = jax.random.split(key)
  ridge = energy.sample_ridge_prior(ridge_key, n, config.D)
  if data.is_infinite(config.M):  # the dMMSE prior is then N(0, I) as well
    return ridge, energy.sample_ridge_prior(dmmse_key, n, config.D)
  return ridge, energy.sample_dmmse_prior(dmmse_key, tasks, n)


class EnergyDistance:
  """Energy distances between the PMC prior sample and the two Bayes priors."""

  def __init__(self, config: ml_collections.ConfigDict, writer):
    self._config = config
    self._writer = writer
    self._sample = prior.make_prior_sampler(config, config.energy_num_samples, config.K)

  def __call__(self, step: int, params, tasks) -> dict:
    c = self._config
    sample_key, reference_key = jax.random.split(streams.at_step(c.seed, "energy", step))
    samples = self._sample(params, sample_key)  # [S, D]
    ridge, dmmse = _reference_samples(c, tasks, reference_key, c.energy_num_samples)
    scalars = {"energy_dist/prior/ridge": float(energy.energy_distance(samples, ridge)),
               "energy_dist/prior/dmmse": float(energy.energy_distance(samples, dmmse))}
    self._writer.write_scalars(step, scalars)
    host = np.asarray(samples)
    self._writer.write_histograms(
        step, {f"prior/dim_{i}": host[:, i] for i in range(c.D)})
    return scalars


class PriorSnapshots:
  """Takes prior-tracking snapshots and keeps snapshots.npz in step with checkpoints."""

  def __init__(self, config: ml_collections.ConfigDict, apply_fn: Callable, head,
               workdir: str, config_json: str, resample_steps: Optional[np.ndarray]):
    self._config = c = config
    self.file = snapshots.SnapshotFile(workdir, config_json, resample_steps)
    self._sample = prior.make_prior_sampler(c, c.num_pr_samples, c.pr_generation_steps)

    def deltas(params, tasks, key):
      xs, ys = data.sample_sequences(key, None if data.is_infinite(c.M) else tasks,
                                     SNAPSHOT_BATCH_SIZE, c.K, c.noise_var, D=c.D)
      ridge = baselines.ridge(xs, ys, c.noise_var)
      dmmse = ridge if data.is_infinite(c.M) else baselines.dmmse(xs, ys, tasks,
                                                                   c.noise_var)
      m = evaluation.split_metrics(head.mean(apply_fn(params, xs, ys)), ys, ridge, dmmse,
                                   D=c.D, prompt_length=c.delta_prompt_length,
                                   tail_start=None)
      return m["delta_dmmse"], m["delta_ridge"]

    self._deltas = jax.jit(deltas)

  def __call__(self, step: int, params, tasks, latest_loss: float) -> None:
    c = self._config
    sample_key, batch_key = jax.random.split(streams.at_step(c.seed, "snapshots", step))
    delta_dmmse, delta_ridge = self._deltas(params, tasks, batch_key)
    self.file.add(steps=step, losses=latest_loss, tasks=tasks,
                  pr=self._sample(params, sample_key), delta_dmmse=delta_dmmse,
                  delta_ridge=delta_ridge)


class LocalLearningCoefficient:
  """SGLD estimates of the LLC at the current parameters (temporal_icl.llc).

  The dataset is `llc.dataset_size` sequences drawn from the current task set
  with one fixed key: every estimate of a run sees the same inputs and noise, so
  estimates at different steps differ only by the model (and by the task set,
  where the schedule moves it).
  """

  def __init__(self, config: ml_collections.ConfigDict, apply_fn: Callable, head, writer):
    self._config = config
    self._writer = writer
    fields = {k: v for k, v in config.llc.items() if k != "dataset_size"}
    self.sgld = llc.SGLDConfig(**fields)

    def loss_fn(params, batch):
      xs, ys = batch
      return heads.loss(head, apply_fn(params, xs, ys), ys)

    self._estimate = llc.make_llc_estimator(loss_fn, self.sgld)

  def dataset(self, tasks):
    c = self._config
    return data.sample_sequences(streams.key(c.seed, "llc"),
                                 None if data.is_infinite(c.M) else tasks,
                                 c.llc.dataset_size, c.K, c.noise_var, D=c.D)

  def __call__(self, step: int, params, tasks) -> llc.LLCResult:
    key = streams.at_step(self._config.seed, "llc", step)
    result = self._estimate(params, self.dataset(tasks), key)
    self._writer.write_scalars(step, {
        "llc/mean": float(result.mean), "llc/std": float(result.std),
        "llc/loss_below_init_fraction": float(result.loss_below_init_fraction)})
    return result
