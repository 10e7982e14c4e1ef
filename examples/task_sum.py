"""A toy measurement, written outside the package: the sum of every task entry,
written as `tasks/sum` at the steps of the step spec `config.task_sum_steps`.

Use it by adding "examples.task_sum" to `config.measurements` (examples/toy_config.py).
A measurement that returns scalars is this much: a step spec, and a pure compute
returning a dict.  The training loop writes each value to the run's writer.
README "Extending" walks through it.
"""

import jax.numpy as jnp

from temporal_icl import measurements
from temporal_icl.common import step_specs
from temporal_icl.core import experiment


class TaskSum(measurements.Measurement):
  name = "task_sum"  # its time shows under this name in the progress report
  steps_field = "task_sum_steps"  # the config field of its step spec

  def __init__(self, context):
    super().__init__(context)
    self._exp = context.experiment

  def compute(self, step, state, run, train):
    """Pure, for one run (the loop vmaps it over the group): its current tasks."""
    tasks = experiment.training_tasks(self._exp, state.schedule)  # [M, D], maybe padded
    real = jnp.arange(tasks.shape[0]) < run.num_tasks  # a group pads M to its largest
    return {"tasks/sum": jnp.sum(jnp.where(real[:, None], tasks, 0.0))}


build = measurements.when_on(TaskSum)


def problems(config):
  return step_specs.problems("task_sum_steps", config.task_sum_steps, config.num_steps)
