"""Energy distance of the implicit prior to both Bayes priors, at `energy_distance_steps`.

Writes energy_dist/prior/{ridge,dmmse} and per-dimension histograms prior/dim_i
of the predictive-Monte-Carlo task samples (temporal_icl.measurements.methods.predictive).  Needs a
probabilistic head.
"""

import jax

from temporal_icl.common import step_specs
from temporal_icl.core import data
from temporal_icl.core import experiment
from temporal_icl.core import heads
from temporal_icl.measurements.methods import energy
from temporal_icl.measurements.methods import predictive


def reference_samples(config, tasks, key, n, num_tasks=None):
  """Samples [n, D] of the ridge prior and of the dMMSE prior (current tasks)."""
  ridge_key, dmmse_key = jax.random.split(key)
  ridge = predictive.sample_ridge_prior(ridge_key, n, config.D)
  if data.is_infinite_set(tasks):  # M = ∞: the dMMSE prior is N(0, I) as well
    return ridge, predictive.sample_ridge_prior(dmmse_key, n, config.D)
  return ridge, predictive.sample_dmmse_prior(dmmse_key, tasks, n, num_tasks)


class EnergyDistance:
  """Energy distances between the PMC prior sample and the two Bayes priors."""
  name = "energy_distance"

  def __init__(self, context):
    c = self._config = context.config
    self._exp = context.experiment
    self._writers = [run.writer for run in context.runs]
    self.steps = [set(step_specs.parse(c.energy_distance_steps, c.num_steps))] * len(
        context.runs)
    self._sample = predictive.make_prior_sampler(c, c.energy_num_samples, c.K)

  def compute(self, step, state, run, last_loss):
    del last_loss
    c = self._config
    sample_key, reference_key = jax.random.split(jax.random.fold_in(run.keys["energy"], step))
    samples = self._sample(state.params, sample_key)  # [S, D]
    tasks = experiment.training_tasks(self._exp, state.schedule)
    ridge, dmmse = reference_samples(c, tasks, reference_key, c.energy_num_samples,
                                     run.num_tasks)
    return {"energy_dist/prior/ridge": energy.energy_distance(samples, ridge),
            "energy_dist/prior/dmmse": energy.energy_distance(samples, dmmse),
            "samples": samples}

  def write(self, step, index, outputs):
    samples = outputs.pop("samples")
    writer = self._writers[index]
    writer.write_scalars(step, {k: float(v) for k, v in outputs.items()})
    writer.write_histograms(step, {f"prior/dim_{i}": samples[:, i]
                                   for i in range(self._config.D)})


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
  return EnergyDistance(context)
