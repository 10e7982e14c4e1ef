"""The spec's metrics at `eval_steps`: errors, NLL, Δ_PT on train and test tasks.

Train-task metrics use the batch of the last step trained (step − 1), test-task
metrics a held-out set: fresh N(0, I_D) tasks from the run's seed, or the TFDS
set `config.eval_dataset`.  Also writes the learning rate of the step, `lr`, and
what the schedule reports of itself (its `metrics(state, num_tasks)`, e.g. MALA's
acceptance rate).
"""

import functools

import jax.numpy as jnp

from temporal_icl.common import errors
from temporal_icl.common import step_specs
from temporal_icl.core import experiment
from temporal_icl.measurements.methods import error_metrics


def eval_dataset(config):
  """The TFDS held-out set of config.eval_dataset as (xs, ys), or None.

  Raises:
    errors.ConfigError: the set is unknown or does not match the run's K, D.
  """
  if not config.eval_dataset:
    return None
  return _load(config.eval_dataset, config.eval_data_dir, config.K, config.D)


@functools.lru_cache(maxsize=4)
def _load(name, data_dir, K, D):
  from temporal_icl.core.datasets import iclr_eval  # pylint: disable=g-import-not-at-top
  try:
    xs, ys = iclr_eval.load_eval_batch(name, data_dir or None)
  except ValueError as e:
    raise errors.ConfigError([f"config.eval_dataset={name!r}: {e}"]) from None
  if xs.shape[1:] != (K, D):
    raise errors.ConfigError([
        f"config.eval_dataset={name!r} holds sequences of K={xs.shape[1]} "
        f"pairs in D={xs.shape[2]}, but the run has K={K}, D={D}."])
  return xs, ys


class Evaluation:
  name = "eval"

  def __init__(self, context):
    c, self._exp = context.config, context.experiment
    self._writers = [run.writer for run in context.runs]
    self.steps = [set(step_specs.parse(c.eval_steps, c.num_steps))] * len(context.runs)
    fixed = eval_dataset(c)  # the same held-out set for every run, when given
    self._fixed = None if fixed is None else tuple(jnp.asarray(a, jnp.float32) for a in fixed)

  def compute(self, step, state, run, last_loss):
    del last_loss
    exp = self._exp
    tasks = experiment.training_tasks(exp, state.schedule)
    train = experiment.training_batch(exp, run, state.schedule, jnp.maximum(step - 1, 0))
    test = (self._fixed if self._fixed is not None
            else error_metrics.test_batch(exp.config, run.keys["test_set"]))
    metrics = error_metrics.evaluate(exp, state.params, tasks, train, test, run.num_tasks)
    metrics["lr"] = exp.learning_rate(run.learning_rate)(step)
    if hasattr(exp.schedule, "metrics"):
      metrics.update(exp.schedule.metrics(state.schedule, run.num_tasks))
    return metrics

  def write(self, step, index, outputs):
    self._writers[index].write_scalars(step, {k: float(v) for k, v in outputs.items()})


def problems(config):
  found = step_specs.problems("eval_steps", config.eval_steps, config.num_steps)
  if config.eval_batch_size < 1:
    found.append(f"config.eval_batch_size={config.eval_batch_size} must be >= 1.")
  if config.eval_dataset and not config.eval_dataset.startswith("iclr_eval/"):
    found.append(f"config.eval_dataset={config.eval_dataset!r} must name a TFDS set of "
                 "temporal_icl.core.datasets, e.g. 'iclr_eval/d8_k16' (or be '').")
  return found


def build(context):
  c = context.config
  return Evaluation(context) if step_specs.parse(c.eval_steps, c.num_steps) else None
