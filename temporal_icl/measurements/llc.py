"""Local learning coefficient (temporal_icl.measurements.methods.sgld) at `llc_steps`.

Writes llc/{mean,std,loss_below_init_fraction}.  The SGLD dataset is
`llc.dataset_size` sequences drawn from the current task set with one fixed key:
every estimate of a run sees the same inputs and noise, so estimates at
different steps differ only by the model (and by the task set, where the
schedule moves it).
"""

from absl import logging
import jax

from temporal_icl.common import step_specs
from temporal_icl.core import data
from temporal_icl.core import experiment
from temporal_icl.measurements.methods import sgld


def _sgld_fields(config) -> dict:
  """config.llc without the dataset size: the fields of sgld.SGLDConfig."""
  return {k: v for k, v in config.llc.items() if k != "dataset_size"}


class LocalLearningCoefficient:
  """SGLD estimates of the LLC at the current parameters."""
  name = "llc"

  def __init__(self, context):
    c, exp = self._config, self._exp = context.config, context.experiment
    self._writers = [run.writer for run in context.runs]
    self.steps = [set(step_specs.parse(c.llc_steps, c.num_steps))] * len(context.runs)
    self.sgld = sgld.SGLDConfig.from_config(_sgld_fields(c))
    self._estimate = sgld.make_llc_estimator(lambda params, batch: exp.loss(params, *batch),
                                            self.sgld)

  def dataset(self, tasks, run):
    """The run's fixed SGLD dataset: llc.dataset_size sequences of the given task set."""
    c = self._config
    return data.sample_sequences(run.keys["llc"], tasks, c.llc.dataset_size, c.K,
                                 c.noise_var, num_tasks=run.num_tasks)

  def compute(self, step, state, run, last_loss):
    del last_loss
    tasks = experiment.training_tasks(self._exp, state.schedule)
    result = self._estimate(state.params, self.dataset(tasks, run),
                            jax.random.fold_in(run.keys["llc"], step))
    return {"llc/mean": result.mean, "llc/std": result.std,
            "llc/loss_below_init_fraction": result.loss_below_init_fraction}

  def write(self, step, index, outputs):
    below = float(outputs["llc/loss_below_init_fraction"])
    if below > 0.5:
      logging.warning(
          "LLC at step %d: %.0f%% of the SGLD draws fell below the starting loss, so "
          "the parameters are not near a local minimum and this estimate is not valid "
          "(README 'Developmental analysis').", step, 100 * below)
    self._writers[index].write_scalars(step, {k: float(v) for k, v in outputs.items()})


def problems(config):
  """The step spec, then SGLDConfig's own rules, then the dataset's."""
  found = step_specs.problems("llc_steps", config.llc_steps, config.num_steps)
  if found or not step_specs.parse(config.llc_steps, config.num_steps):
    return found
  found += [f"config.{p}" for p in sgld.SGLDConfig.problems_of(_sgld_fields(config))]
  size = config.llc.dataset_size
  if size < 1:
    found.append(f"config.llc.dataset_size={size} must be >= 1.")
  elif config.llc.batch_size > size:
    found.append(f"config.llc.batch_size={config.llc.batch_size} must be <= "
                 f"config.llc.dataset_size={size}.")
  return found


def build(context):
  if not step_specs.parse(context.config.llc_steps, context.config.num_steps):
    return None
  return LocalLearningCoefficient(context)
