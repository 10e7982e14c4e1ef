"""The spec's metrics at `eval_steps`: errors, NLL, Δ_PT on train and test tasks.

Train-task metrics use the batch of the last step trained (step − 1), test-task
metrics a held-out set: fresh N(0, I_D) tasks from the run's seed, or the TFDS
set `config.eval_dataset`.  Also passes on what the training step reported of
the step reached (train.step_metrics): the learning rate `lr` and what the
schedule reports of itself (e.g. MALA's acceptance rate), so that they are
written at the evaluation's steps.
"""

import functools

import jax.numpy as jnp

from temporal_icl import measurements
from temporal_icl.common import errors
from temporal_icl.common import metric_names as names
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


class Evaluation(measurements.Measurement):
  name = "eval"
  steps_field = "eval_steps"

  def __init__(self, context):
    super().__init__(context)
    self._exp = context.experiment
    fixed = eval_dataset(context.config)  # the same held-out set for every run, when given
    self._fixed = None if fixed is None else tuple(jnp.asarray(a, jnp.float32) for a in fixed)

  def compute(self, step, state, run, train):
    exp = self._exp
    tasks = experiment.training_tasks(exp, state.schedule)
    batch = experiment.training_batch(exp, run, state.schedule, jnp.maximum(step - 1, 0))
    test = (self._fixed if self._fixed is not None
            else error_metrics.test_batch(exp.config, run.keys["test_set"]))
    metrics = error_metrics.evaluate(exp, state.params, tasks, batch, test, run.num_tasks)
    metrics.update({k: v for k, v in train.items() if k != names.TRAIN_LOSS})
    return metrics


def problems(config):
  found = step_specs.problems("eval_steps", config.eval_steps, config.num_steps)
  if config.eval_batch_size < 1:
    found.append(f"config.eval_batch_size={config.eval_batch_size} must be >= 1.")
  if config.eval_dataset and not config.eval_dataset.startswith("iclr_eval/"):
    found.append(f"config.eval_dataset={config.eval_dataset!r} must name a TFDS set of "
                 "temporal_icl.core.datasets, e.g. 'iclr_eval/d8_k16' (or be '').")
  return found


build = measurements.when_on(Evaluation)
