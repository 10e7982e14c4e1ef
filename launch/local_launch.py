r"""Runs a config's sweep on this machine, several runs at a time, no XManager.

  python launch/local_launch.py --config=configs/laptop_replication.py \
      --workdir_root=runs/laptop [--parallel=2] [--dry_run]

Each sweep point (the config's get_sweep()) is one `temporal_icl.main` process
with its log in <workdir>/launch.log.  Finished runs are skipped; interrupted
ones resume (the binary resumes from its checkpoint).  A table shows progress
while the sweep runs; at the end, a table of final Δ_PT per run and the phase
diagram <workdir_root>/phase.png.  Ctrl-C asks every child to checkpoint and
stop; rerun the same command to continue.  A failed run is reported with its
log and does not stop the others.
"""

import logging as std_logging
import os
import re
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from temporal_icl import sweeps  # pylint: disable=g-import-not-at-top
from temporal_icl import workdir as workdir_lib  # pylint: disable=g-import-not-at-top

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PROGRESS = re.compile(r"(\d+)/(\d+)\), ETA: ([^\s,]+)")


def status_of(code: int) -> str:
  """A child's exit code in words.  A child stopped before it could install its
  handlers (still importing) dies of the signal itself: code −15 or −2."""
  if code == 0:
    return "done"
  if code in (128 + signal.SIGTERM, 128 + signal.SIGINT):
    return "stopped"
  if code in (-signal.SIGTERM, -signal.SIGINT):
    return "stopped (while starting)"
  return f"FAILED (exit {code})"


class Job:
  """One sweep point and its child process."""

  def __init__(self, spec: Dict):
    self.name, self.workdir, self.args = spec["name"], spec["workdir"], spec["args"]
    self.log_path = os.path.join(self.workdir, "launch.log")
    self.process: Optional[subprocess.Popen] = None
    self.status = "done (skipped)" if workdir_lib.is_finished(self.workdir) else "queued"
    self.started = self.ended = None

  def start(self, extra_args: List[str]):
    os.makedirs(self.workdir, exist_ok=True)
    log = open(self.log_path, "a")
    self.process = subprocess.Popen(
        [sys.executable, *self.args, *extra_args], cwd=REPO, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)  # Ctrl-C reaches us only
    self.status, self.started = "running", time.time()

  def poll(self) -> bool:
    """Updates the status; True once the child has exited."""
    if self.process is None or self.status != "running":
      return self.process is not None
    code = self.process.poll()
    if code is None:
      return False
    self.ended = time.time()
    self.status = status_of(code)
    return True

  def finished(self) -> bool:
    return workdir_lib.is_finished(self.workdir)

  def progress(self) -> str:
    """'3300/8192 ETA 2m' from the child's last progress line."""
    if not os.path.exists(self.log_path):
      return ""
    with open(self.log_path, "rb") as f:
      f.seek(max(os.path.getsize(self.log_path) - 4096, 0))
      matches = _PROGRESS.findall(f.read().decode(errors="replace"))
    if not matches:
      return ""
    step, total, eta = matches[-1]
    return f"{step}/{total} ETA {eta}"


def print_table(jobs: List[Job], started: float):
  counts = {}
  for job in jobs:
    key = job.status.split(" ")[0]
    counts[key] = counts.get(key, 0) + 1
  print(f"\n[{time.strftime('%H:%M:%S')}] {time.time() - started:6.0f} s  " +
        "  ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
  for job in jobs:
    if job.status == "running":
      print(f"  {job.name:40s} running  {job.progress()}")
  sys.stdout.flush()  # the table is the progress report, also when stdout is a file


def summary(jobs: List[Job], root: str):
  """Final Δ_PT per run; unfinished runs are marked, and left out of the figure."""
  from temporal_icl import plots  # pylint: disable=g-import-not-at-top
  print(f"\n{'run':40s} {'status':24s} {'train Δ_dMMSE':>14s} {'train Δ_Ridge':>14s} "
        f"{'test Δ_dMMSE':>13s} {'test Δ_Ridge':>13s}")
  for job in jobs:
    train = plots.final_metrics(job.workdir, "train") if os.path.isdir(job.workdir) else None
    test = plots.final_metrics(job.workdir, "test") if train else None
    status = job.status if job.finished() else f"{job.status}, UNFINISHED"
    cells = (f"{train['dmmse']:14.4g} {train['ridge']:14.4g} {test['dmmse']:13.4g} "
             f"{test['ridge']:13.4g}" if train and test else "")
    if cells and not job.finished():
      cells += f"  (at step {train['step']})"
    print(f"{job.name:40s} {status:24s} {cells}")
  for job in jobs:
    if job.status.startswith("FAILED"):
      print(f"{job.name} failed; its log: {job.log_path}")
  finished = [j.workdir for j in jobs if j.finished()]
  path = plots.plot_phase_diagram(finished, os.path.join(root, "phase.png"))
  if path:
    left_out = len(jobs) - len(finished)
    print(f"Phase diagram: {path}" + (f" ({left_out} unfinished runs left out)"
                                      if left_out else ""))


def run_sweep(jobs: List[Job], parallel: int, extra_args: List[str],
              report_every: float) -> bool:
  """Runs the queued jobs; False when stopped by Ctrl-C / SIGTERM."""
  stop = {"requested": False}

  def request_stop(signum, _):
    if not stop["requested"]:
      print(f"\n{signal.Signals(signum).name}: asking every run to checkpoint and stop…",
            flush=True)
    stop["requested"] = True
  signal.signal(signal.SIGINT, request_stop)
  signal.signal(signal.SIGTERM, request_stop)

  queue = [j for j in jobs if j.status == "queued"]
  running: List[Job] = []
  started, last_report = time.time(), 0.0
  while queue or running:
    if stop["requested"]:
      for job in running:
        job.process.send_signal(signal.SIGTERM)
      for job in running:
        job.process.wait()
        job.poll()
      return False
    while queue and len(running) < parallel:
      job = queue.pop(0)
      job.start(extra_args)
      running.append(job)
    for job in list(running):
      if job.poll():
        running.remove(job)
        print(f"{job.name}: {job.status} in {job.ended - job.started:.0f} s", flush=True)
    if time.time() - last_report >= report_every:
      print_table(jobs, started)
      sys.stdout.flush()
      last_report = time.time()
    time.sleep(0.5)
  print(f"\nSweep finished in {time.time() - started:.0f} s.")
  return True


_CONFIG = flags.DEFINE_string("config", None, "Config file with a get_sweep().")
_ROOT = flags.DEFINE_string("workdir_root", None, "Directory for the runs' workdirs.")
_PARALLEL = flags.DEFINE_integer(
    "parallel", None, "Concurrent runs (default, or -1: local accelerators, or cores).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the commands, run nothing.")
_ONLY = flags.DEFINE_string("only", "", "Run only the points whose name contains this.")
_EXTRA = flags.DEFINE_multi_string("extra", [], "Extra flags for every run.")
_REPORT_EVERY = flags.DEFINE_float("report_every", 30.0, "Seconds between tables.")


def default_parallel() -> int:
  import jax  # pylint: disable=g-import-not-at-top
  devices = jax.local_devices()
  if devices[0].platform != "cpu":
    return len(devices)
  return max(os.cpu_count() or 1, 1)


def main(argv):
  del argv
  std_logging.getLogger("tensorboard").setLevel(std_logging.WARNING)  # chatty reader
  if not (_CONFIG.value and _ROOT.value):
    raise app.UsageError("--config and --workdir_root are required.")
  parallel = _PARALLEL.value
  if parallel is not None and parallel == 0 or (parallel or 0) < -1:
    print(f"error: --parallel={parallel} must be a number of runs >= 1, or -1 for one "
          "per core.", file=sys.stderr)
    sys.exit(2)
  # Children run from the repository root: resolve the caller's paths first.
  config_path, root = os.path.abspath(_CONFIG.value), os.path.abspath(_ROOT.value)
  if not os.path.exists(config_path):
    print(f"error: --config={_CONFIG.value}: no such file.", file=sys.stderr)
    sys.exit(2)
  try:
    specs = sweeps.commands(config_path, root)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  specs = [s for s in specs if _ONLY.value in s["name"]]
  if _DRY_RUN.value:
    for s in specs:
      print(" ".join(["python", *s["args"], *_EXTRA.value]))
    print(f"{len(specs)} runs")
    return
  jobs = [Job(s) for s in specs]
  parallel = default_parallel() if parallel in (None, -1) else parallel
  print(f"{len(jobs)} runs ({sum(j.status == 'queued' for j in jobs)} to do), "
        f"{parallel} at a time; logs in <workdir>/launch.log")
  finished = run_sweep(jobs, parallel, _EXTRA.value, _REPORT_EVERY.value)
  summary(jobs, root)
  if not finished:
    print("Stopped; rerun the same command to continue.")
    sys.exit(130)
  if any(j.status.startswith("FAILED") for j in jobs):
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
