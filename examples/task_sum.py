"""A toy measurement, written outside the package: the sum of every task entry,
written as `tasks/sum` at the steps of the step spec `config.task_sum_steps`.

Use it by adding "examples.task_sum" to `config.measurements` (examples/toy_config.py).
README "Extending" walks through it.
"""

import jax.numpy as jnp

from temporal_icl.common import step_specs
from temporal_icl.core import experiment


class TaskSum:
  name = "task_sum"  # its time shows under this name in the progress report

  def __init__(self, context):
    self._exp = context.experiment
    self._writers = [run.writer for run in context.runs]  # one per run of the group
    steps = set(step_specs.parse(context.config.task_sum_steps, context.config.num_steps))
    self.steps = [steps] * len(context.runs)

  def compute(self, step, state, run, last_loss):
    """Pure, for one run (the loop vmaps it over the group): its current tasks."""
    tasks = experiment.training_tasks(self._exp, state.schedule)  # [M, D], maybe padded
    real = jnp.arange(tasks.shape[0]) < run.num_tasks  # a group pads M to its largest
    return {"tasks/sum": jnp.sum(jnp.where(real[:, None], tasks, 0.0))}

  def write(self, step, index, outputs):
    """Host side, for run `index`: its writer gets the number."""
    self._writers[index].write_scalars(step, {"tasks/sum": float(outputs["tasks/sum"])})


def build(context):
  return TaskSum(context) if context.config.task_sum_steps else None


def problems(config):
  return step_specs.problems("task_sum_steps", config.task_sum_steps, config.num_steps)
