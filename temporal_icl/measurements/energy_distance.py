"""Energy distance of the implicit prior to both Bayes priors, at `energy_distance_steps`.

Writes energy_dist/prior/{ridge,dmmse} and per-dimension histograms prior/dim_i
of the predictive-Monte-Carlo task samples (temporal_icl.measurements.methods.predictive).  Needs a
probabilistic head.
"""

import jax

from temporal_icl import measurements
from temporal_icl.common import metric_names as names
from temporal_icl.core import data
from temporal_icl.core import experiment
from temporal_icl.core import heads
from temporal_icl.measurements.methods import energy
from temporal_icl.measurements.methods import predictive


def reference_samples(config, tasks, key, n, num_tasks=None):
  """Samples [n, D] of the ridge prior and of the dMMSE prior (current tasks)."""
  ridge_key, dmmse_key = jax.random.split(key)
  ridge = predictive.sample_ridge_prior(ridge_key, n, config.D)
  if data.dmmse_is_ridge(tasks):
    return ridge, predictive.sample_ridge_prior(dmmse_key, n, config.D)
  return ridge, predictive.sample_dmmse_prior(dmmse_key, tasks, n, num_tasks)


class EnergyDistance(measurements.Measurement):
  """Energy distances between the PMC prior sample and the two Bayes priors."""
  name = "energy_distance"
  steps_field = "energy_distance_steps"
  artifacts = ("samples",)  # written as histograms, not as scalars

  def __init__(self, context):
    super().__init__(context)
    c = self._config = context.config
    self._exp = context.experiment
    self._sample = context.prior_sampler(c.energy_num_samples, c.K)

  def compute(self, step, state, run, train):
    del train
    c = self._config
    sample_key, reference_key = jax.random.split(jax.random.fold_in(run.keys["energy"], step))
    samples = self._sample(state.params, sample_key)  # [S, D]
    tasks = experiment.training_tasks(self._exp, state.schedule)
    ridge, dmmse = reference_samples(c, tasks, reference_key, c.energy_num_samples,
                                     run.num_tasks)
    return {names.energy_dist(names.RIDGE): energy.energy_distance(samples, ridge),
            names.energy_dist(names.DMMSE): energy.energy_distance(samples, dmmse),
            "samples": samples}

  def histograms(self, outputs):
    samples = outputs["samples"]
    return {names.prior_histogram(i): samples[:, i] for i in range(self._config.D)}


def _problems_when_on(config):
  found = heads.sampling_problems(config, "energy_distance_steps")
  if config.energy_num_samples < 2:
    found.append(f"config.energy_num_samples={config.energy_num_samples} must be >= 2.")
  return found


def problems(config):
  return measurements.spec_problems(config, "energy_distance_steps", _problems_when_on)


build = measurements.when_on(EnergyDistance)
