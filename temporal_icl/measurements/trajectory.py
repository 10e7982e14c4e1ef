"""Training states kept at `trajectory_steps` in workdir/trajectory/, never deleted.

They are what essential dynamics (temporal_icl.essential_dynamics) and offline
LLC estimates read.
"""

from temporal_icl import step_specs
from temporal_icl import workdir as workdir_lib


class Trajectory:
  name = "trajectory"

  def __init__(self, context):
    c = context.config
    self.steps = set(step_specs.parse(c.trajectory_steps, c.num_steps))
    self._manager = workdir_lib.trajectory_manager(context.workdir)

  def __call__(self, step, state, last_loss=None, t=None):
    workdir_lib.save(self._manager, step, state)

  def close(self):
    self._manager.wait_until_finished()


def problems(config):
  return step_specs.problems("trajectory_steps", config.trajectory_steps, config.num_steps)


def build(context):
  c = context.config
  return Trajectory(context) if step_specs.parse(c.trajectory_steps, c.num_steps) else None
