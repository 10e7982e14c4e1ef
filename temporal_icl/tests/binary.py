"""Runs the training binary on the tiny config and reads its results, for the tests."""

import os
import subprocess
import sys

from temporal_icl.analysis import export

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = "temporal_icl/tests/tiny_config.py"


def run_main(workdir, *overrides, devices=1):
  """Runs `python -m temporal_icl.main` on the tiny config with `devices` CPU devices."""
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             JAX_PLATFORMS="cpu")
  return subprocess.run(
      [sys.executable, "-m", "temporal_icl.main", f"--config={TINY}",
       f"--workdir={workdir}", *overrides],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def science_history(workdir):
  """Every spec metric at every step (timestamps dropped)."""
  stats = export.to_reference_json(str(workdir))["stats"]
  return [{k: v for k, v in row.items() if k != "timestamp"} for row in stats]
