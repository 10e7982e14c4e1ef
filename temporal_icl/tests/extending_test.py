"""A schedule and a measurement from outside the package run through the binary.

examples/sign_flip.py flips every task's sign every 16 steps; examples/task_sum.py
writes the sum of the task entries every 16 steps; examples/toy_config.py names
both.  Nothing in temporal_icl/ knows of them.
"""

import os
import subprocess
import sys

import numpy as np

from temporal_icl import export
from temporal_icl import schedules
from temporal_icl import validation
from temporal_icl.tests import binary
from configs import base


def test_toy_schedule_and_measurement_run_through_the_binary(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  result = subprocess.run(
      [sys.executable, "-m", "temporal_icl.main", "--config=examples/toy_config.py",
       f"--workdir={tmp_path}"], cwd=binary.REPO, env=env, capture_output=True,
      text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  steps, sums = export.scalar_array(export.read_scalars(str(tmp_path))["tasks/sum"])
  assert list(steps) == [0, 16, 32, 48, 64]
  # Update s (s = 0, 1, …) flips when s is a positive multiple of 16.  The state
  # measured at step n has had updates 0 … n−1: none flipped at n = 16, one at
  # 32 (update 16), two at 48, three at 64.
  assert abs(sums[0]) > 1e-3
  np.testing.assert_allclose(sums, sums[0] * np.array([1, 1, -1, 1, -1]), rtol=1e-6)


def test_unknown_schedule_and_measurement_are_one_sentence_each():
  c = base.get_config()
  c.schedule = "no_such_schedule"
  c.measurements = c.measurements + ("no_such_measurement",)
  problems = validation.find_problems(c)
  assert any(p.startswith("config.schedule='no_such_schedule' is not a schedule; valid: "
                          + ", ".join(schedules.names())) for p in problems), problems
  assert any("'no_such_measurement', which is not a measurement; valid: " in p
             for p in problems), problems
