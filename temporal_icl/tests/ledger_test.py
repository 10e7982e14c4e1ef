"""A sweep's ledger and the launcher's session-proof parts: what is kept, what is
skipped, where each process runs, and groups that stay the same between sessions."""

import json
import os
import subprocess
import sys

import pytest

from temporal_icl.launching import ledger
from temporal_icl.launching import niceness
from temporal_icl.launching import sweeps

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = "temporal_icl/tests/tiny_config.py"
sys.path.insert(0, os.path.join(REPO, "launch"))
import local_launch  # pylint: disable=g-import-not-at-top,wrong-import-position


def _finished_run(workdir, marker="FINISHED"):
  """A workdir as a finished run leaves it, checkpoints included."""
  os.makedirs(os.path.join(workdir, "checkpoints", "3072"))
  with open(os.path.join(workdir, "checkpoints", "3072", "big.bin"), "wb") as f:
    f.write(b"\0" * 1000)
  for name, text in (("config.json", '{"M": 8}'), ("operative_config.gin", "x = 1"),
                     (marker, "9216"), ("events.out.tfevents.1.host.1.0.v2", "e1"),
                     ("events.out.tfevents.2.host.1.0.v2", "e2"), ("launch.log", "log")):
    with open(os.path.join(workdir, name), "w") as f:
      f.write(text)


def test_the_ledger_keeps_the_small_files_and_never_checkpoints(tmp_path):
  run = tmp_path / "runs" / "M8-seed0"
  _finished_run(str(run))
  copied = ledger.record(str(run), str(tmp_path / "ledger"))
  entry = tmp_path / "ledger" / "M8-seed0"
  assert sorted(os.listdir(entry)) == [
      "FINISHED", "config.json", "events.out.tfevents.1.host.1.0.v2",
      "events.out.tfevents.2.host.1.0.v2", "operative_config.gin"]
  assert sorted(copied) == sorted(str(entry / f) for f in os.listdir(entry))
  assert (entry / "events.out.tfevents.2.host.1.0.v2").read_text() == "e2"
  assert ledger.status(str(tmp_path / "ledger"), "M8-seed0") == "done"


@pytest.mark.parametrize("files, expected", [
    (("config.json", "FINISHED"), "done"),
    (("config.json", "DIVERGED"), "DIVERGED"),
    (("FINISHED",), None),  # no config: not a run the ledger can vouch for
    (("config.json",), None),  # started, never finished
    ((), None),
])
def test_the_ledger_counts_a_run_as_done_only_with_its_config(tmp_path, files, expected):
  entry = tmp_path / "run"
  entry.mkdir()
  for name in files:
    (entry / name).write_text("x")
  assert ledger.status(str(tmp_path), "run") == expected


def test_each_launch_is_recorded_with_where_it_ran(tmp_path):
  where = ledger.machine(REPO)
  assert set(where) == {"commit", "jax", "jaxlib", "python", "cpu"}
  assert where["jax"] == __import__("jax").__version__
  assert where["cpu"]["vector_extensions"] in ("AVX-512", "AVX2", "other")
  assert len(where["commit"].split("-")[0]) == 40
  ledger.note_launch(str(tmp_path), where, [1], ["a", "b"], ["-m", "x"])
  ledger.note_end(str(tmp_path), "stopped")
  ledger.note_launch(str(tmp_path), where, None, ["a", "b"], ["-m", "x"])
  ledger.note_end(str(tmp_path), "done")
  records = json.loads((tmp_path / "provenance.json").read_text())
  assert [(r["cores"], r["status"], r["group"]) for r in records] == [
      ([1], "stopped", ["a", "b"]), ("all", "done", ["a", "b"])]


def test_sessions_are_added_then_updated_in_place(tmp_path):
  ledger.note_session(str(tmp_path), {"started": "t1", "finished_runs": 0})
  ledger.note_session(str(tmp_path), {"started": "t1", "finished_runs": 5})
  ledger.note_session(str(tmp_path), {"started": "t2", "finished_runs": 7})
  sessions = json.loads((tmp_path / "sessions.json").read_text())
  assert sessions == [{"started": "t1", "finished_runs": 5},
                      {"started": "t2", "finished_runs": 7}]


@pytest.mark.parametrize("parallel, cores, shares", [
    (2, [0, 1], [[0], [1]]),
    (2, [0, 1, 2, 3], [[0, 1], [2, 3]]),
    (3, [0, 1, 2, 3, 4], [[0, 1], [2, 3], [4]]),
    (1, [4, 6], [[4, 6]]),
    (3, [0, 1], [[0], [1], [0]]),  # more processes than cores: they share round-robin
])
def test_each_process_gets_its_own_share_of_the_cores(parallel, cores, shares):
  assert local_launch.core_shares(parallel, cores) == shares


def test_a_finishing_job_is_copied_to_the_ledger(tmp_path):
  runs = [{"name": n, "workdir": str(tmp_path / "runs" / n)} for n in ("a", "b")]
  job = local_launch.Job({"name": "a+1", "workdir": runs[0]["workdir"], "args": [],
                          "runs": runs}, ledger=str(tmp_path / "ledger"))
  assert job.status == "queued"
  _finished_run(runs[0]["workdir"])
  _finished_run(runs[1]["workdir"], marker="DIVERGED")
  job.process = subprocess.Popen(["true"])
  job.status = "running"
  job.process.wait()
  assert job.poll()
  assert ledger.status(str(tmp_path / "ledger"), "a") == "done"
  assert ledger.status(str(tmp_path / "ledger"), "b") == "DIVERGED"
  # A new session with an empty workdir root skips both.
  again = local_launch.Job({"name": "a+1", "workdir": str(tmp_path / "new" / "a"),
                            "args": []}, ledger=str(tmp_path / "ledger"))
  assert again.status == "done (skipped)"


def test_groups_do_not_change_when_runs_of_the_sweep_are_done(tmp_path):
  names = lambda jobs: [[r["name"] for r in j["runs"]] for j in jobs]
  config = os.path.join(REPO, "configs", "laptop_phase.py")
  whole = sweeps.commands(config, str(tmp_path), runs_per_process=8)
  assert len(whole) == 21 and [len(g) for g in names(whole)] == [8] * 20 + [5]
  # Coarse to fine: all 45 runs of M ∈ {1, 32, 1024} come before any other M.
  first = [r["overrides"]["M"] for j in whole for r in j["runs"]][:45]
  assert set(first) == {1, 32, 1024}
  done = {n for group in names(whole)[:3] for n in group} | {names(whole)[3][0]}
  rest = sweeps.commands(config, str(tmp_path), runs_per_process=8,
                         skip=lambda w: os.path.basename(w) in done)
  assert names(rest) == [names(whole)[3][1:]] + names(whole)[4:]


def test_the_launcher_skips_what_the_ledger_holds(tmp_path):
  book = tmp_path / "ledger" / "gamma0-seed42"
  book.mkdir(parents=True)
  (book / "config.json").write_text("{}")
  (book / "FINISHED").write_text("8")
  dry = subprocess.run(
      [sys.executable, os.path.join(REPO, "launch", "local_launch.py"), f"--config={TINY}",
       f"--workdir_root={tmp_path / 'runs'}", f"--ledger={tmp_path / 'ledger'}",
       "--dry_run"], cwd=REPO, env=dict(os.environ, JAX_PLATFORMS="cpu"),
      capture_output=True, text=True, timeout=120)
  assert dry.returncode == 0, dry.stderr[-2000:]
  assert dry.stdout.splitlines()[-1] == "2 runs: 1 to train in 1 processes, 1 done already"
  assert "--group=gamma0.05-seed42" in dry.stdout and "gamma0-seed42" not in dry.stdout


def test_a_pinned_child_runs_only_on_its_cores(tmp_path):
  core = sorted(os.sched_getaffinity(0))[-1]
  job = local_launch.Job({"name": "p", "workdir": str(tmp_path / "p"),
                          "args": ["-c", "import os, time; time.sleep(0.5); "
                                   "print(sorted(os.sched_getaffinity(0)))"]})
  job.start([], cores=[core])
  job.process.wait()
  assert (tmp_path / "p" / "launch.log").read_text().strip() == str([core])


@pytest.mark.skipif(not niceness.autogroups_on(), reason="the kernel schedules no autogroups")
def test_a_niced_launchers_child_yields_though_it_has_a_session_of_its_own(tmp_path):
  # The launcher, niced by 7, starts a child that reads its own autogroup: without the
  # niceness handed on, the child's new session would be scheduled at nice 0.
  launcher = (
      "import os, sys; os.nice(7); sys.path.insert(0, 'launch'); import local_launch; "
      f"job = local_launch.Job({{'name': 'c', 'workdir': {str(tmp_path / 'c')!r}, "
      "'args': ['-c', 'import time; time.sleep(0.5); print(open(\"/proc/self/autogroup\")"
      ".read().split()[-2:])']}); job.start([]); job.process.wait()")
  result = subprocess.run([sys.executable, "-c", launcher], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
  assert result.returncode == 0, result.stderr[-2000:]
  assert (tmp_path / "c" / "launch.log").read_text().strip() == str(["nice", "7"])


def test_niceness_is_passed_on_only_where_there_is_some():
  assert not niceness.pass_on(os.getpid(), 0)
