r"""Sweep throughput: run-steps/s of laptop-size runs, one per process or in groups.

  python -m benchmarks.sweep_throughput [--processes=2] [--sizes=1,2,4,8,16] \
      [--steps=256] [--rounds=1] [--layouts=unpinned,pinned] [--launcher_steps=0]

Part 1 times the training step alone.  For each group size N it starts
`--processes` worker processes at once (as launch/local_launch.py --parallel
does), each training a group of N laptop-size runs (configs/demo.py: 2 blocks ×
64, batch 64, D = 4, K = 16; seeds differ) for `--steps` steps after a compile
call, and reports the run-steps per second of all processes together and its
ratio to N = 1 (one run per process, the launcher's runs_per_process=1).  Each
size is timed in each layout: 'unpinned' (every process may use every core, as
`local_launch.py --nopin_cores`) and 'pinned' (each process on its own share of the
cores, local_launch.core_shares, the launcher's default on CPU), the layouts
alternating, --rounds times each (the median is printed), with the ratio
pinned / unpinned.

Part 2 (with --launcher_steps > 0) times launch/local_launch.py end to end, as a
user runs it, on an 8-run sweep of that many steps: --runs_per_process=1 against
=4, each from an empty workdir root; evaluation every 1024 steps as in the laptop
configs.  It prints both wall times and their ratio.

Both print the float32 2048² matmul peak measured in the same run.  Timings on a
shared machine are noisy: run it on an idle one.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_PROCESSES = flags.DEFINE_integer("processes", 2, "Worker processes at a time.")
_SIZES = flags.DEFINE_list("sizes", ["1", "2", "4", "8", "16"], "Group sizes N to time.")
_STEPS = flags.DEFINE_integer("steps", 256, "Timed steps per worker.")
_LAUNCHER_STEPS = flags.DEFINE_integer(
    "launcher_steps", 0, "Steps per run of the end-to-end launcher comparison (0: skip).")
_WORKER = flags.DEFINE_integer("worker", 0, "Internal: time one group of this size.")
_ROUNDS = flags.DEFINE_integer("rounds", 1, "Timings of each (size, layout); median shown.")
_LAYOUTS = flags.DEFINE_list("layouts", ["unpinned", "pinned"],
                             "Core layouts to time: unpinned, pinned.")

_SWEEP_CONFIG = """\
from configs import laptop_replication
from temporal_icl.launching import sweeps

def get_config():
  config = laptop_replication.get_config()
  config.num_steps = {steps}
  return config

def get_sweep():  # 8 runs: 2 task diversities x 2 drifts x 2 seeds
  return sweeps.product(M=[8, 64], gamma=[0.0, 1e-2], seed=[0, 1])
"""


def worker(size: int, steps: int) -> None:
  """Times `steps` steps of a group of `size` demo-size runs; prints JSON."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from configs import demo  # pylint: disable=g-import-not-at-top
  from temporal_icl.core import experiment  # pylint: disable=g-import-not-at-top
  from temporal_icl.launching import sweeps  # pylint: disable=g-import-not-at-top
  from temporal_icl.training import groups  # pylint: disable=g-import-not-at-top
  from temporal_icl.training import train  # pylint: disable=g-import-not-at-top
  config = demo.get_config()
  experiment.parse_gin(config)
  exp = experiment.build(config)
  runs = [sweeps.apply(config, {"seed": seed}) for seed in range(size)]
  states = groups.stack([experiment.init_state(exp, c) for c in runs])
  data = groups.stack([experiment.run_data(c) for c in runs])
  multi_step = train.make_multi_step(exp, train.make_mesh(), size)
  zeros = jnp.zeros((size,), jnp.float32)
  states, losses, _ = multi_step(states, data, jnp.asarray(8, jnp.int32), zeros)
  jax.block_until_ready(losses)  # compiled
  start = time.perf_counter()
  states, losses, _ = multi_step(states, data, jnp.asarray(steps, jnp.int32), zeros)
  jax.block_until_ready(losses)
  print(json.dumps({"seconds": time.perf_counter() - start}))


def run_steps_per_sec(size: int, processes: int, steps: int, pinned: bool = False
                      ) -> float:
  """Run-steps/s of `processes` workers, each timing a group of `size`, together;
  `pinned`: each on its share of the cores, as the launcher places them."""
  command = [sys.executable, "-m", "benchmarks.sweep_throughput", f"--worker={size}",
             f"--steps={steps}"]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  sys.path.insert(0, os.path.join(REPO, "launch"))
  import local_launch  # pylint: disable=g-import-not-at-top
  shares = local_launch.core_shares(processes) if pinned else [None] * processes
  children = []
  for share in shares:
    children.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True))
    if share:
      os.sched_setaffinity(children[-1].pid, share)
  seconds = []
  for child in children:
    out, _ = child.communicate()
    if child.returncode:
      raise RuntimeError(f"worker for N={size} failed (exit {child.returncode})")
    seconds.append(json.loads(out.strip().splitlines()[-1])["seconds"])
  return sum(size * steps / s for s in seconds)


def launcher_seconds(steps: int, runs_per_process: int, processes: int,
                     pinned: bool = True) -> float:
  """Wall time of local_launch.py on the 8-run sweep, from an empty workdir root."""
  with tempfile.TemporaryDirectory() as root:
    config = os.path.join(root, "sweep8.py")
    with open(config, "w") as f:
      f.write(_SWEEP_CONFIG.format(steps=steps))
    start = time.perf_counter()
    subprocess.run([sys.executable, os.path.join("launch", "local_launch.py"),
                    f"--config={config}", f"--workdir_root={root}/runs",
                    f"--parallel={processes}", f"--runs_per_process={runs_per_process}",
                    "--report_every=600", "--pin_cores" if pinned else "--nopin_cores"], cwd=REPO, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    return time.perf_counter() - start


def main(argv):
  del argv
  if _WORKER.value:
    worker(_WORKER.value, _STEPS.value)
    return
  sys.path.insert(0, REPO)
  from benchmarks import train_throughput  # pylint: disable=g-import-not-at-top
  peak = train_throughput.matmul_flops_per_sec()
  print(f"float32 2048² matmul: {peak / 1e9:.1f} GFLOP/s (this run); "
        f"{os.cpu_count()} cores, {_PROCESSES.value} processes at a time")
  sizes = [int(s) for s in _SIZES.value]
  layouts = _LAYOUTS.value
  unknown = set(layouts) - {"unpinned", "pinned"}
  if unknown:
    raise app.UsageError(f"--layouts: {sorted(unknown)} not among unpinned, pinned.")
  print(f"run-steps/s, median of {_ROUNDS.value} (layouts alternating)\n"
        f"{'N':>4s} " + " ".join(f"{l:>10s}" for l in layouts)
        + ("  pinned/unpinned" if len(layouts) == 2 else "")
        + "  (each layout: ×N=1 of it)")
  base = {}
  for size in sizes:
    timings = {layout: [] for layout in layouts}
    for _ in range(_ROUNDS.value):
      for layout in layouts:
        timings[layout].append(run_steps_per_sec(size, _PROCESSES.value, _STEPS.value,
                                                 pinned=layout == "pinned"))
    rates = {layout: float(np.median(t)) for layout, t in timings.items()}
    if size == 1:
      base = rates
    line = f"{size:4d} " + " ".join(f"{rates[l]:10.1f}" for l in layouts)
    if len(layouts) == 2:
      line += f"  x{rates['pinned'] / rates['unpinned']:.2f}          "
    if base:
      line += "  (" + ", ".join(f"x{rates[l] / base[l]:.2f}" for l in layouts) + ")"
    print(line, flush=True)
  if _LAUNCHER_STEPS.value:
    print(f"local_launch.py, 8 runs x {_LAUNCHER_STEPS.value} steps, --parallel="
          f"{_PROCESSES.value}, wall seconds:")
    for runs_per_process, pinned in ((4, False), (4, True), (8, True)):
      seconds = launcher_seconds(_LAUNCHER_STEPS.value, runs_per_process,
                                 _PROCESSES.value, pinned)
      print(f"  --runs_per_process={runs_per_process} "
            f"{'--pin_cores  ' if pinned else '--nopin_cores'}: {seconds:6.0f} s", flush=True)


if __name__ == "__main__":
  app.run(main)
