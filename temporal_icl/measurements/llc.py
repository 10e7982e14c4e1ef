"""Local learning coefficient (temporal_icl.llc) at `llc_steps`.

Writes llc/{mean,std,loss_below_init_fraction}.  The SGLD dataset is
`llc.dataset_size` sequences drawn from the current task set with one fixed key:
every estimate of a run sees the same inputs and noise, so estimates at
different steps differ only by the model (and by the task set, where the
schedule moves it).
"""

from absl import logging

from temporal_icl import data
from temporal_icl import experiment
from temporal_icl import llc
from temporal_icl import renamed_fields
from temporal_icl import step_specs
from temporal_icl import streams


def _sgld_fields(config) -> dict:
  """config.llc without the dataset size (and the unset pre-0.2 names base.py
  declares): the fields of llc.SGLDConfig."""
  return {k: v for k, v in config.llc.items()
          if k != "dataset_size" and f"llc.{k}" not in renamed_fields.OLD_NAMES}


class LocalLearningCoefficient:
  """SGLD estimates of the LLC at the current parameters."""
  name = "llc"

  def __init__(self, config, exp, writer):
    self._config, self._exp, self._writer = config, exp, writer
    self.steps = set(step_specs.parse(config.llc_steps, config.num_steps))
    self.sgld = llc.SGLDConfig.from_config(_sgld_fields(config))
    self._estimate = llc.make_llc_estimator(lambda params, batch: exp.loss(params, *batch),
                                            self.sgld)

  def dataset(self, tasks):
    c = self._config
    return data.sample_sequences(streams.key(c.seed, "llc"), tasks, c.llc.dataset_size,
                                 c.K, c.noise_var)

  def measure(self, step: int, params, tasks) -> llc.LLCResult:
    key = streams.at_step(self._config.seed, "llc", step)
    result = self._estimate(params, self.dataset(tasks), key)
    below = float(result.loss_below_init_fraction)
    if below > 0.5:
      logging.warning(
          "LLC at step %d: %.0f%% of the SGLD draws fell below the starting loss, so "
          "the parameters are not near a local minimum and this estimate is not valid "
          "(README 'Developmental analysis').", step, 100 * below)
    self._writer.write_scalars(step, {
        "llc/mean": float(result.mean), "llc/std": float(result.std),
        "llc/loss_below_init_fraction": below})
    return result

  def __call__(self, step, state, last_loss=None, t=None):
    self.measure(step, state.params, experiment.training_tasks(self._exp, state.schedule))


def problems(config):
  """The step spec, then SGLDConfig's own rules, then the dataset's."""
  found = step_specs.problems("llc_steps", config.llc_steps, config.num_steps)
  if found or not step_specs.parse(config.llc_steps, config.num_steps):
    return found
  found += [f"config.{p}" for p in llc.SGLDConfig.problems_of(_sgld_fields(config))]
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
  return LocalLearningCoefficient(context.config, context.experiment, context.writer)
