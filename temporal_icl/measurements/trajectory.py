"""Training states kept at `trajectory_steps` in workdir/trajectory/, never deleted.

They are what essential dynamics (temporal_icl.analysis.essential_dynamics) and offline
LLC estimates read.
"""

from temporal_icl import measurements
from temporal_icl.common import step_specs
from temporal_icl.common import workdir as workdir_lib


class Trajectory(measurements.Measurement):
  """Saves each run's state (nothing to compute)."""
  name = "trajectory"
  steps_field = "trajectory_steps"

  def __init__(self, context):
    super().__init__(context)
    self._managers = [workdir_lib.trajectory_manager(run.workdir) for run in context.runs]
    self._state = context.run_state

  def save_artifacts(self, step, index, outputs):
    del outputs
    workdir_lib.save(self._managers[index], step, self._state(index))

  def close(self):
    for manager in self._managers:
      manager.wait_until_finished()


def problems(config):
  return step_specs.problems("trajectory_steps", config.trajectory_steps, config.num_steps)


build = measurements.when_on(Trajectory)
