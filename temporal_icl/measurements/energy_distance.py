"""Energy distance of the implicit prior to both Bayes priors, at `energy_distance_steps`.

Writes energy_dist/prior/{ridge,dmmse} and per-dimension histograms prior/dim_i
of the predictive-Monte-Carlo task samples (temporal_icl.prior).  Needs a
probabilistic head.
"""

import jax
import numpy as np

from temporal_icl import data
from temporal_icl import energy
from temporal_icl import experiment
from temporal_icl import heads
from temporal_icl import prior
from temporal_icl import step_specs
from temporal_icl import streams


def reference_samples(config, tasks, key, n):
  """Samples [n, D] of the ridge prior and of the dMMSE prior (current tasks)."""
  ridge_key, dmmse_key = jax.random.split(key)
  ridge = energy.sample_ridge_prior(ridge_key, n, config.D)
  if data.is_infinite_set(tasks):  # M = ∞: the dMMSE prior is N(0, I) as well
    return ridge, energy.sample_ridge_prior(dmmse_key, n, config.D)
  return ridge, energy.sample_dmmse_prior(dmmse_key, tasks, n)


class EnergyDistance:
  """Energy distances between the PMC prior sample and the two Bayes priors."""
  name = "energy_distance"

  def __init__(self, config, writer, exp=None):
    self._config, self._writer, self._exp = config, writer, exp
    self.steps = set(step_specs.parse(config.energy_distance_steps, config.num_steps))
    self._sample = prior.make_prior_sampler(config, config.energy_num_samples, config.K)

  def measure(self, step: int, params, tasks) -> dict:
    c = self._config
    sample_key, reference_key = jax.random.split(streams.at_step(c.seed, "energy", step))
    samples = self._sample(params, sample_key)  # [S, D]
    ridge, dmmse = reference_samples(c, tasks, reference_key, c.energy_num_samples)
    scalars = {"energy_dist/prior/ridge": float(energy.energy_distance(samples, ridge)),
               "energy_dist/prior/dmmse": float(energy.energy_distance(samples, dmmse))}
    self._writer.write_scalars(step, scalars)
    host = np.asarray(samples)
    self._writer.write_histograms(
        step, {f"prior/dim_{i}": host[:, i] for i in range(c.D)})
    return scalars

  def __call__(self, step, state, last_loss=None, t=None):
    self.measure(step, state.params, experiment.training_tasks(self._exp, state.schedule))


def problems(config):
  found = step_specs.problems("energy_distance_steps", config.energy_distance_steps,
                              config.num_steps)
  if found or not step_specs.parse(config.energy_distance_steps, config.num_steps):
    return found
  found += heads.sampling_problems(config, "energy_distance_steps")
  if config.energy_num_samples < 2:
    found.append(f"config.energy_num_samples={config.energy_num_samples} must be >= 2.")
  return found


def build(context):
  c = context.config
  if not step_specs.parse(c.energy_distance_steps, c.num_steps):
    return None
  return EnergyDistance(c, context.writer, context.experiment)
