"""Local learning coefficient (temporal_icl.measurements.methods.sgld) at `llc_steps`.

Writes llc/{mean,std,loss_below_init_fraction}.  The SGLD dataset is
`llc.dataset_size` sequences drawn from the current task set with one fixed key:
every estimate of a run sees the same inputs and noise, so estimates at
different steps differ only by the model (and by the task set, where the
schedule moves it).
"""

from absl import logging
import jax

from temporal_icl import measurements
from temporal_icl.common import metric_names as names
from temporal_icl.core import data
from temporal_icl.core import experiment
from temporal_icl.measurements.methods import sgld


def _sgld_fields(config) -> dict:
  """config.llc without the dataset size: the fields of sgld.SGLDConfig."""
  return {k: v for k, v in config.llc.items() if k != "dataset_size"}


class LocalLearningCoefficient(measurements.Measurement):
  """SGLD estimates of the LLC at the current parameters."""
  name = "llc"
  steps_field = "llc_steps"

  def __init__(self, context):
    super().__init__(context)
    exp = self._exp = context.experiment
    self._config = context.config
    self.sgld = sgld.SGLDConfig.from_config(_sgld_fields(context.config))
    self._estimate = sgld.make_llc_estimator(lambda params, batch: exp.loss(params, *batch),
                                            self.sgld)

  def dataset(self, tasks, run):
    """The run's fixed SGLD dataset: llc.dataset_size sequences of the given task set."""
    c = self._config
    return data.sample_sequences(run.keys["llc"], tasks, c.llc.dataset_size, c.K,
                                 c.noise_var, num_tasks=run.num_tasks)

  def compute(self, step, state, run, train):
    del train
    tasks = experiment.training_tasks(self._exp, state.schedule)
    result = self._estimate(state.params, self.dataset(tasks, run),
                            jax.random.fold_in(run.keys["llc"], step))
    return {names.LLC_MEAN: result.mean, names.LLC_STD: result.std,
            names.LLC_LOSS_BELOW_INIT_FRACTION: result.loss_below_init_fraction}

  def save_artifacts(self, step, index, outputs):
    """No file: a warning in the log when the estimate is not valid."""
    below = float(outputs[names.LLC_LOSS_BELOW_INIT_FRACTION])
    if below > 0.5:
      logging.warning(
          "LLC at step %d: %.0f%% of the SGLD draws fell below the starting loss, so "
          "the parameters are not near a local minimum and this estimate is not valid "
          "(README 'Developmental analysis').", step, 100 * below)


def _problems_when_on(config):
  """SGLDConfig's own rules, then the dataset's."""
  found = [f"config.{p}" for p in sgld.SGLDConfig.problems_of(_sgld_fields(config))]
  size = config.llc.dataset_size
  if size < 1:
    found.append(f"config.llc.dataset_size={size} must be >= 1.")
  elif config.llc.batch_size > size:
    found.append(f"config.llc.batch_size={config.llc.batch_size} must be <= "
                 f"config.llc.dataset_size={size}.")
  return found


def problems(config):
  """The step spec, then SGLDConfig's own rules, then the dataset's."""
  return measurements.spec_problems(config, "llc_steps", _problems_when_on)


build = measurements.when_on(LocalLearningCoefficient)
