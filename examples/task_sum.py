"""A toy measurement, written outside the package: the sum of every task entry,
written as `tasks/sum` at the steps of the step spec `config.task_sum_steps`.

Use it by adding "examples.task_sum" to `config.measurements` (examples/toy_config.py).
README "Extending" walks through it.
"""

import numpy as np

from temporal_icl import experiment
from temporal_icl import step_specs


class TaskSum:
  name = "task_sum"  # its time shows under this name in the progress report

  def __init__(self, context):
    self._exp, self._writer = context.experiment, context.writer
    self.steps = set(step_specs.parse(context.config.task_sum_steps,
                                      context.config.num_steps))

  def __call__(self, step, state, last_loss=None, t=None):
    tasks = experiment.training_tasks(self._exp, state.schedule)
    self._writer.write_scalars(step, {"tasks/sum": float(np.sum(tasks))})


def build(context):
  return TaskSum(context) if context.config.task_sum_steps else None


def problems(config):
  return step_specs.problems("task_sum_steps", config.task_sum_steps, config.num_steps)
