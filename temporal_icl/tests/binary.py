"""Runs the training binary on the tiny config and reads its results, for the tests."""

import os
import subprocess
import sys

from temporal_icl.analysis import export

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = "temporal_icl/tests/tiny_config.py"


# The tests' XLA flags (conftest sets them for the test processes too): LLVM's
# machine-code optimisation off, and fusions emitted by XLA's older elemental
# emitters instead of its MLIR fusion emitters.  XLA's own passes (fusion, layout) are
# unchanged, so the programs compute the same things, rounded perhaps differently
# (two programs that differ anywhere may differ in the last bit: compare across them
# with a tolerance).  The suite spends most of its time compiling the tiny configs'
# programs; a cold tiny run compiles in 2.4 CPU-s with both flags, 5.3 with the first
# alone, and the whole default suite took 272 s instead of 396 s (idle 2-core
# AVX-512 machine, cold cache, 2026-12-07).
TEST_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"


def cpu_env(devices=1, test_flags=True, **variables):
  """os.environ for a child process of the tests: `devices` CPU devices, the tests'
  XLA flags (test_flags=False: XLA's defaults, as users compile; for the tests of
  hangs, which depend on how long the compiled code runs), and `variables`."""
  flags = f"--xla_force_host_platform_device_count={devices}"
  if test_flags:
    flags = f"{TEST_XLA_FLAGS} {flags}"
  return dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=flags, **variables)


def run_main(workdir, *overrides, devices=1):
  """Runs `python -m temporal_icl.main` on the tiny config with `devices` CPU devices."""
  env = cpu_env(devices)
  return subprocess.run(
      [sys.executable, "-m", "temporal_icl.main", f"--config={TINY}",
       f"--workdir={workdir}", *overrides],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def science_history(workdir):
  """Every spec metric at every step (timestamps dropped)."""
  stats = export.to_reference_json(str(workdir))["stats"]
  return [{k: v for k, v in row.items() if k != "timestamp"} for row in stats]
