r"""Runs a config's sweep on this machine, several processes at a time, no XManager.

  python launch/local_launch.py --config=configs/laptop_replication.py \
      --workdir_root=runs/laptop [--parallel=2] [--runs_per_process=4] [--dry_run] \
      [--ledger=results/laptop] [--nopin_cores]

The sweep points (the config's get_sweep()) are trained by `temporal_icl.main`
processes, --parallel of them at a time, each training up to --runs_per_process
compatible points as one run group (README "Run groups"); 1 is one solo process
per point.  A process's log is <workdir>/launch.log of its first run (the others'
launch.log link to it).  Finished runs are skipped, and so are runs that diverged
(their DIVERGED file says why); interrupted ones resume from their checkpoints.
A table shows progress while the sweep runs; at the end, a table of final Δ_PT
per run and the phase diagram <workdir_root>/phase.png.  Ctrl-C asks every child
to checkpoint and stop; rerun the same command to continue.  A failed process is
reported with its log and does not stop the others.

On a CPU backend each of the --parallel processes is pinned to its own share of
the cores (XLA sizes its thread pool to the cores it may use): two processes that
share both cores of a 2-core machine train ×0.7 as many run-steps per second as two
pinned one per core (benchmarks/sweep_throughput.py).  --nopin_cores turns it off.
With --ledger, every finished run's small files are copied into that directory as
it finishes (temporal_icl/launching/ledger.py), and runs the ledger holds are skipped: commit
the ledger, and a sweep resumes on any machine.
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
from temporal_icl.common import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
from temporal_icl.launching import ledger as ledger_lib  # pylint: disable=g-import-not-at-top
from temporal_icl.launching import niceness  # pylint: disable=g-import-not-at-top
from temporal_icl.launching import sweeps  # pylint: disable=g-import-not-at-top

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Chosen from benchmarks/sweep_throughput.py (README "Run groups").
DEFAULT_RUNS_PER_PROCESS = 4
_PROGRESS = re.compile(r"(\d+)/(\d+)\), ETA: ([^\s,]+)")


def status_of(code: int) -> str:
  """A child's exit code in words.  A child stopped before it could install its
  handlers (still importing) dies of the signal itself: code −15 or −2."""
  if code == 0:
    return "done"
  if code == 3:  # the binary's exit status when a run diverged (README "Divergence")
    return "DIVERGED"
  if code in (128 + signal.SIGTERM, 128 + signal.SIGINT):
    return "stopped"
  if code in (-signal.SIGTERM, -signal.SIGINT):
    return "stopped (while starting)"
  return f"FAILED (exit {code})"


def done_already(workdir: str, ledger: str = "") -> Optional[str]:
  """'done (skipped)' or 'DIVERGED (skipped)' for a run not to launch again, else None."""
  if workdir_lib.is_finished(workdir):
    return "done (skipped)"
  if os.path.exists(os.path.join(workdir, workdir_lib.DIVERGED_FILE)):
    return "DIVERGED (skipped)"
  recorded = ledger and ledger_lib.status(ledger, os.path.basename(workdir))
  return f"{recorded} (skipped)" if recorded else None


def core_shares(parallel: int, cores: Optional[List[int]] = None) -> List[List[int]]:
  """Disjoint, contiguous shares of `cores` (default: the cores this process may
  use), one per process slot: 4 cores, 2 slots -> [[0, 1], [2, 3]].  With more slots
  than cores, slot i gets core i mod the count."""
  cores = sorted(os.sched_getaffinity(0)) if cores is None else sorted(cores)
  if parallel >= len(cores):
    return [[cores[i % len(cores)]] for i in range(parallel)]
  size, extra = divmod(len(cores), parallel)
  shares, start = [], 0
  for i in range(parallel):
    end = start + size + (i < extra)
    shares.append(cores[start:end])
    start = end
  return shares


class Job:
  """One child process: a sweep point, or a group of them (spec["runs"])."""

  def __init__(self, spec: Dict, ledger: str = ""):
    self.name, self.workdir, self.args = spec["name"], spec["workdir"], spec["args"]
    self.runs = spec.get("runs") or [{"name": self.name, "workdir": self.workdir}]
    self.log_path = os.path.join(self.workdir, "launch.log")
    self.process: Optional[subprocess.Popen] = None
    self.ledger = ledger
    self.status = done_already(self.workdir, ledger) or "queued"
    self.started = self.ended = None
    self.cores: Optional[List[int]] = None  # the share it runs on, when pinned

  def run_status(self, workdir: str) -> str:
    """The status of one of the job's runs: its own marker first, then the process's."""
    if self.status == "running" or self.status.endswith("(skipped)"):
      return self.status
    if workdir_lib.is_finished(workdir):
      return "done"
    if os.path.exists(os.path.join(workdir, workdir_lib.DIVERGED_FILE)):
      return "DIVERGED"
    return "stopped" if self.status == "DIVERGED" else self.status  # its group's fault

  def start(self, extra_args: List[str], cores: Optional[List[int]] = None,
            where: Optional[Dict] = None):
    """Starts the child, pinned to `cores` if given; `where` (ledger.machine()) is
    appended to each run's provenance.json."""
    command = [*self.args, *extra_args]
    for run in self.runs:
      os.makedirs(run["workdir"], exist_ok=True)
      if where is not None:
        ledger_lib.note_launch(run["workdir"], where, cores,
                               [r["name"] for r in self.runs], command)
    for run in self.runs[1:]:  # one log per process, seen from every run's workdir
      link = os.path.join(run["workdir"], "launch.log")
      if os.path.lexists(link):
        os.remove(link)
      os.symlink(os.path.relpath(self.log_path, run["workdir"]), link)
    log = open(self.log_path, "a")
    self.cores = cores
    self.process = subprocess.Popen(
        [sys.executable, *command], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)  # Ctrl-C reaches us only
    if cores:  # set from here, not in the child before exec: this process runs JAX's
      # threads, and a forked child must not run Python.  The child is still importing
      # when this lands, long before XLA sizes its thread pool by the cores it may use.
      os.sched_setaffinity(self.process.pid, cores)
    niceness.pass_on(self.process.pid)  # its own session: `nice` alone would not reach it
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
    for run in self.runs:
      if os.path.exists(os.path.join(run["workdir"], ledger_lib.PROVENANCE_FILE)):
        ledger_lib.note_end(run["workdir"], self.run_status(run["workdir"]))
      if self.ledger and done_already(run["workdir"]):
        ledger_lib.record(run["workdir"], self.ledger)
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
    counts[key] = counts.get(key, 0) + len(job.runs)
  print(f"\n[{time.strftime('%H:%M:%S')}] {time.time() - started:6.0f} s  runs " +
        "  ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
  for job in jobs:
    if job.status == "running":
      size = f" ({len(job.runs)} runs)" if len(job.runs) > 1 else ""
      print(f"  {job.name + size:40s} running  {job.progress()}")
  sys.stdout.flush()  # the table is the progress report, also when stdout is a file


def summary(jobs: List[Job], root: str, order: Optional[List[str]] = None):
  """Final Δ_PT per run; unfinished runs are marked, and left out of the figure."""
  from temporal_icl.analysis import plots  # pylint: disable=g-import-not-at-top
  print(f"\n{'run':40s} {'status':24s} {'train Δ_dMMSE':>14s} {'train Δ_Ridge':>14s} "
        f"{'test Δ_dMMSE':>13s} {'test Δ_Ridge':>13s}")
  finished = []
  runs = [(job, run) for job in jobs for run in job.runs]
  position = {name: i for i, name in enumerate(order or [])}
  runs.sort(key=lambda jr: position.get(jr[1]["name"], len(position)))
  for job, run in runs:
    workdir = run["workdir"]
    if job.ledger and not workdir_lib.is_finished(workdir) and ledger_lib.status(
        job.ledger, run["name"]):
      workdir = os.path.join(job.ledger, run["name"])  # finished in an earlier session
    train = plots.final_metrics(workdir, "train") if os.path.isdir(workdir) else None
    test = plots.final_metrics(workdir, "test") if train else None
    done = workdir_lib.is_finished(workdir)
    status = job.run_status(run["workdir"]) if workdir == run["workdir"] else job.status
    status = status if done or status.startswith("DIVERGED") else f"{status}, UNFINISHED"
    cells = (f"{train['dmmse']:14.4g} {train['ridge']:14.4g} {test['dmmse']:13.4g} "
             f"{test['ridge']:13.4g}" if train and test else "")
    if cells and not done:
      cells += f"  (at step {train['step']})"
    print(f"{run['name']:40s} {status:24s} {cells}")
    if done:
      finished.append(workdir)
  for job in jobs:
    if job.status.startswith("FAILED"):
      print(f"{job.name} failed; its log: {job.log_path}")
    for run in job.runs:
      if job.run_status(run["workdir"]).startswith("DIVERGED"):
        print(f"{run['name']} diverged: {workdir_lib.divergence(run['workdir'])}")
  path = plots.plot_phase_diagram(finished, os.path.join(root, "phase.png"))
  if path:
    left_out = sum(len(j.runs) for j in jobs) - len(finished)
    print(f"Phase diagram: {path}" + (f" ({left_out} unfinished runs left out)"
                                      if left_out else ""))


def run_sweep(jobs: List[Job], parallel: int, extra_args: List[str],
              report_every: float, shares: Optional[List[List[int]]] = None,
              where: Optional[Dict] = None, on_report=lambda: None) -> bool:
  """Runs the queued jobs, each on a free share of `shares` (None: unpinned);
  False when stopped by Ctrl-C / SIGTERM.  `on_report` runs with each table."""
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
      busy = [j.cores for j in running]
      free = [share for share in shares if share not in busy] if shares else [None]
      job.start(extra_args, free[0], where)
      running.append(job)
    for job in list(running):
      if job.poll():
        running.remove(job)
        size = f" ({len(job.runs)} runs)" if len(job.runs) > 1 else ""
        print(f"{job.name}{size}: {job.status} in {job.ended - job.started:.0f} s",
              flush=True)
    if time.time() - last_report >= report_every:
      print_table(jobs, started)
      on_report()
      sys.stdout.flush()
      last_report = time.time()
    time.sleep(0.5)
  on_report()
  print(f"\nSweep finished in {time.time() - started:.0f} s.")
  return True


_CONFIG = flags.DEFINE_string("config", None, "Config file with a get_sweep().")
_ROOT = flags.DEFINE_string("workdir_root", None, "Directory for the runs' workdirs.")
_PARALLEL = flags.DEFINE_integer(
    "parallel", None, "Concurrent runs (default, or -1: local accelerators, or cores).")
_RUNS_PER_PROCESS = flags.DEFINE_integer(
    "runs_per_process", DEFAULT_RUNS_PER_PROCESS,
    "Sweep points trained by one process as a run group (1: one solo process each).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the commands, run nothing.")
_ONLY = flags.DEFINE_string("only", "", "Run only the points whose name contains this.")
_EXTRA = flags.DEFINE_multi_string("extra", [], "Extra flags for every run.")
_REPORT_EVERY = flags.DEFINE_float("report_every", 30.0, "Seconds between tables.")
_LEDGER = flags.DEFINE_string(
    "ledger", "", "Directory (in the repository, to commit) where each finished run's "
    "small files are copied; runs it holds are skipped (temporal_icl/launching/ledger.py).")
_PIN_CORES = flags.DEFINE_bool(
    "pin_cores", True, "On a CPU backend, pin each process to its own share of the "
    "cores (--nopin_cores: let every process use every core).")


def on_cpu() -> bool:
  import jax  # pylint: disable=g-import-not-at-top
  return jax.local_devices()[0].platform == "cpu"


def default_parallel() -> int:
  import jax  # pylint: disable=g-import-not-at-top
  if not on_cpu():
    return len(jax.local_devices())
  return max(len(os.sched_getaffinity(0)), 1)


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
  if _RUNS_PER_PROCESS.value < 1:
    print(f"error: --runs_per_process={_RUNS_PER_PROCESS.value} must be >= 1.",
          file=sys.stderr)
    sys.exit(2)
  ledger = os.path.abspath(_LEDGER.value) if _LEDGER.value else ""
  try:
    all_runs = sweeps.commands(config_path, root)  # one per point, for the table
    points = {s["name"] for s in all_runs if _ONLY.value in s["name"]}
    specs = sweeps.commands(
        config_path, root, runs_per_process=_RUNS_PER_PROCESS.value,
        skip=lambda w: os.path.basename(w) not in points or done_already(w, ledger) is not None)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  skipped = [Job(s, ledger) for s in all_runs
             if s["name"] in points and done_already(s["workdir"], ledger)]
  if _DRY_RUN.value:
    for s in specs:
      print(" ".join(["python", *s["args"], *_EXTRA.value]))
    print(f"{len(points)} runs: {sum(len(s['runs']) for s in specs)} to train in "
          f"{len(specs)} processes, {len(skipped)} done already")
    return
  jobs = skipped + [Job(s, ledger) for s in specs]
  parallel = default_parallel() if parallel in (None, -1) else parallel
  shares = core_shares(parallel) if _PIN_CORES.value and on_cpu() else None
  print(f"{len(points)} runs ({sum(len(j.runs) for j in jobs if j.status == 'queued')} to "
        f"do, in {sum(j.status == 'queued' for j in jobs)} processes of up to "
        f"{_RUNS_PER_PROCESS.value} runs), {parallel} processes at a time"
        + (f", pinned to cores {shares}" if shares else "") + "; logs in "
        "<workdir>/launch.log")
  where = ledger_lib.machine(REPO)
  on_report = lambda: None
  if ledger:
    for job in skipped:  # finished before there was a ledger, or before a crash
      for run in job.runs:
        if done_already(run["workdir"]):
          ledger_lib.record(run["workdir"], ledger)
    session = dict(where, started=ledger_lib.now(), parallel=parallel,
                   runs_per_process=_RUNS_PER_PROCESS.value, cores=shares or "all")

    def on_report():
      session.update(updated=ledger_lib.now(), finished_runs=sum(
          ledger_lib.status(ledger, s["name"]) is not None for s in all_runs))
      ledger_lib.note_session(ledger, session)
    on_report()
  finished = run_sweep(jobs, parallel, _EXTRA.value, _REPORT_EVERY.value, shares,
                       where, on_report)
  summary(jobs, root, [s["name"] for s in all_runs])
  if not finished:
    print("Stopped; rerun the same command to continue.")
    sys.exit(130)
  if any(j.status.startswith(("FAILED", "DIVERGED")) for j in jobs):
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
