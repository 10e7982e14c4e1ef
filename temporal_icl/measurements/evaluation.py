"""The spec's metrics at `eval_steps`: errors, NLL, Δ_PT on train and test tasks.

Train-task metrics use the batch of the last step trained (step − 1), test-task
metrics a held-out set: fresh N(0, I_D) tasks from the run's seed, or the TFDS
set `config.eval_dataset`.  Also writes the learning rate of the step, `lr`.
"""

import functools

from temporal_icl import evaluation
from temporal_icl import experiment
from temporal_icl import step_specs
from temporal_icl import validation


def eval_dataset(config):
  """The TFDS held-out set of config.eval_dataset as (xs, ys), or None.

  Raises:
    validation.ConfigError: the set is unknown or does not match the run's K, D.
  """
  if not config.eval_dataset:
    return None
  return _load(config.eval_dataset, config.eval_data_dir, config.K, config.D)


@functools.lru_cache(maxsize=4)
def _load(name, data_dir, K, D):
  from temporal_icl.datasets import iclr_eval  # pylint: disable=g-import-not-at-top
  try:
    xs, ys = iclr_eval.load_eval_batch(name, data_dir or None)
  except ValueError as e:
    raise validation.ConfigError([f"config.eval_dataset={name!r}: {e}"]) from None
  if xs.shape[1:] != (K, D):
    raise validation.ConfigError([
        f"config.eval_dataset={name!r} holds sequences of K={xs.shape[1]} "
        f"pairs in D={xs.shape[2]}, but the run has K={K}, D={D}."])
  return xs, ys


class Evaluation:
  name = "eval"

  def __init__(self, context):
    c, self._exp, self._writer = context.config, context.experiment, context.writer
    self.steps = set(step_specs.parse(c.eval_steps, c.num_steps))
    self._evaluator = evaluation.Evaluator(
        c, self._exp.model.apply, self._exp.head,
        experiment.stream_key(c.seed, "test_set"), eval_dataset(c))

  def __call__(self, step, state, last_loss=None, t=None):
    exp = self._exp
    xs, ys = experiment.training_batch(exp, state.schedule, max(step - 1, 0))
    metrics = self._evaluator(state.params, experiment.training_tasks(exp, state.schedule),
                              xs, ys)
    metrics["lr"] = float(exp.lr(step))
    self._writer.write_scalars(step, metrics)


def problems(config):
  found = step_specs.problems("eval_steps", config.eval_steps, config.num_steps)
  if config.eval_batch_size < 1:
    found.append(f"config.eval_batch_size={config.eval_batch_size} must be >= 1.")
  if config.eval_dataset and not config.eval_dataset.startswith("iclr_eval/"):
    found.append(f"config.eval_dataset={config.eval_dataset!r} must name a TFDS set of "
                 "temporal_icl.datasets, e.g. 'iclr_eval/d8_k16' (or be '').")
  return found


def build(context):
  c = context.config
  return Evaluation(context) if step_specs.parse(c.eval_steps, c.num_steps) else None
