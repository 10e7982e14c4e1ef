"""Run groups: runs trained as one program equal the same runs trained alone."""

import os

import jax
import numpy as np
import pytest

from temporal_icl import export
from temporal_icl import groups
from temporal_icl import sweeps
from temporal_icl import train
from temporal_icl import validation
from temporal_icl import workdir as workdir_lib
from temporal_icl.tests import binary
from temporal_icl.tests import tiny_config

TOLERANCE = dict(rtol=1e-5, atol=1e-5)  # "within 1e-5": relative, or absolute near 0
# Runs of a group differ in M (so task sets are padded), γ, the seed and the rate.
POINTS = [dict(M=3, gamma=0.0, seed=0), dict(M=5, gamma=0.2, seed=1, learning_rate=1e-3)]


def config_of(point, **fields):
  c = tiny_config.get_config()
  c.update(fields)
  return sweeps.apply(c, point)


def names_of(points):
  return [sweeps.run_name(p) for p in points]


def files(workdir):
  """The workdir's files and directories: event files under one name, orbax's
  checkpoints (whose inner names are random) as their step directories."""
  found = set()
  for directory, dirs, names in os.walk(workdir):
    for name in dirs + names:
      parts = os.path.relpath(os.path.join(directory, name), workdir).split(os.sep)
      if parts[0] in (workdir_lib.CHECKPOINTS_DIR, workdir_lib.TRAJECTORY_DIR):
        parts = parts[:2]
      found.add("events" if name.startswith("events.out.tfevents") else "/".join(parts))
  return found


def scalars(workdir):
  """{tag: {step: value}} without the timing tags."""
  return {tag: {s: v for s, (_, v) in series.items()}
          for tag, series in export.read_scalars(str(workdir)).items()
          if tag not in ("steps_per_sec", "uptime")}


def assert_same_run(grouped, alone, stopped=False):
  """Two workdirs hold the same run: files, configs, every metric at every step.

  stopped: `grouped` was stopped and resumed, so it kept its stop's checkpoint too.
  """
  kept = lambda w: {f for f in files(w)
                    if not (stopped and f.startswith(workdir_lib.CHECKPOINTS_DIR + "/"))}
  assert kept(grouped) == kept(alone)
  for name in (workdir_lib.CONFIG_FILE, "operative_config.gin"):
    assert (grouped / name).read_bytes() == (alone / name).read_bytes(), name
  a, b = scalars(grouped), scalars(alone)
  assert sorted(a) == sorted(b)
  for tag in a:
    assert sorted(a[tag]) == sorted(b[tag]), tag
    np.testing.assert_allclose([a[tag][s] for s in sorted(a[tag])],
                               [b[tag][s] for s in sorted(b[tag])], err_msg=tag, **TOLERANCE)


def assert_same_states(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert np.shape(x) == np.shape(y)
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), **TOLERANCE)


@pytest.fixture(scope="module")
def solo_runs(tmp_path_factory):
  """Each point of POINTS trained alone, with evaluation and trajectory states on."""
  root = tmp_path_factory.mktemp("solo")
  states = {n: train.train_and_evaluate(config_of(p, trajectory_steps="log:4"),
                                        str(root / n))
            for p, n in zip(POINTS, names_of(POINTS))}
  return root, states


def test_a_group_equals_its_runs_trained_alone(solo_runs, tmp_path):
  root, solo_states = solo_runs
  names = names_of(POINTS)
  states = train.train_group([config_of(p, trajectory_steps="log:4") for p in POINTS],
                             [str(tmp_path / n) for n in names], names=names)
  for name, state in zip(names, states):
    assert_same_run(tmp_path / name, root / name)
    assert_same_states(state, solo_states[name])
    assert state.schedule.tasks.shape[0] == (3 if name.startswith("M3") else 5)  # unpadded


def test_a_group_resumes_alone_and_a_solo_run_resumes_in_a_group(solo_runs, tmp_path):
  root, solo_states = solo_runs
  names = names_of(POINTS)
  configs = lambda: [config_of(p, trajectory_steps="log:4") for p in POINTS]
  stopped = train.train_group(configs(), [str(tmp_path / n) for n in names], names=names,
                              should_stop=lambda step: step >= 24)
  assert [int(s.step) for s in stopped] == [24, 24]
  # Run 0 resumes alone; run 1 first goes on alone to step 32, then resumes in a group
  # with a fresh run 2, so the group's runs start from different steps.
  train.train_and_evaluate(configs()[0], str(tmp_path / names[0]))
  train.train_and_evaluate(configs()[1], str(tmp_path / names[1]),
                           should_stop=lambda step: step >= 32)
  extra = dict(M=4, gamma=0.1, seed=2)
  finals = train.train_group(configs() + [config_of(extra, trajectory_steps="log:4")],
                             [str(tmp_path / n) for n in names + names_of([extra])],
                             names=names + names_of([extra]))
  for name, final in zip(names, finals):
    assert_same_run(tmp_path / name, root / name, stopped=True)
    assert_same_states(final, solo_states[name])
  alone = train.train_and_evaluate(config_of(extra, trajectory_steps="log:4"),
                                   str(tmp_path / "extra_alone"))
  assert_same_states(finals[2], alone)


def test_resampling_runs_of_different_R_and_M_share_a_group(tmp_path):
  points = [dict(M=2, R=3, seed=0), dict(M=4, R=6, seed=1)]
  configs = lambda: [config_of(p, schedule="dirichlet", gamma=0.0) for p in points]
  names = names_of(points)
  states = train.train_group(configs(), [str(tmp_path / "g" / n) for n in names],
                             names=names)
  for config, name, state in zip(configs(), names, states):
    alone = train.train_and_evaluate(config, str(tmp_path / "alone" / name))
    assert_same_run(tmp_path / "g" / name, tmp_path / "alone" / name)
    assert_same_states(state, alone)


def test_a_diverging_run_is_frozen_and_marked_while_its_group_finishes(solo_runs, tmp_path):
  root, _ = solo_runs
  bad = dict(M=4, gamma=0.1, seed=3, learning_rate=1e9)  # Adam steps of 1e9: overflow
  points = [POINTS[0], bad]
  configs = [config_of(p, trajectory_steps="log:4") for p in points]
  names = names_of(points)
  with pytest.raises(train.Diverged) as raised:
    train.train_group(configs, [str(tmp_path / n) for n in names], names=names)
  assert str(raised.value).startswith(f"{names[1]}: training diverged: the loss or the "
                                      "parameters became NaN or infinite between steps")
  assert_same_run(tmp_path / names[0], root / names[0])  # the healthy run is unharmed
  diverged = tmp_path / names[1]
  assert (diverged / workdir_lib.DIVERGED_FILE).exists()
  assert not (diverged / workdir_lib.FINISHED_FILE).exists()
  lines = _launcher_table(points, tmp_path)
  assert lines[names[0]].split()[1] == "done" and lines[names[1]].split()[1] == "DIVERGED"
  before = {p: os.path.getmtime(p) for p in map(str, diverged.rglob("*"))}
  # Rerunning the group retrains neither: one is finished, the other diverged before.
  with pytest.raises(train.Diverged):
    train.train_group(configs, [str(tmp_path / n) for n in names], names=names)
  assert {p: os.path.getmtime(p) for p in map(str, diverged.rglob("*"))} == before


def _launcher_table(points, root):
  """{run name: its line} of local_launch's final table for the runs under `root`."""
  import contextlib  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, os.path.join(binary.REPO, "launch"))
  import local_launch  # pylint: disable=g-import-not-at-top
  runs = [{"name": n, "workdir": str(root / n)} for n in names_of(points)]
  job = local_launch.Job({"name": runs[0]["name"], "workdir": runs[0]["workdir"],
                          "args": [], "runs": runs})
  job.status = local_launch.status_of(3)  # what the process's exit code alone says
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    local_launch.summary([job], str(root))
  table = {}
  for line in out.getvalue().splitlines():  # the table's row first, then any explanation
    if line.strip():
      table.setdefault(line.split()[0], line)
  return table


def test_runs_that_may_not_share_a_group_are_refused_one_sentence_each(tmp_path):
  a, b = config_of(POINTS[0]), config_of(POINTS[1], batch_size=16, K=6,
                                         delta_prompt_length=6)
  with pytest.raises(validation.ConfigError) as raised:
    train.train_group([a, b], [str(tmp_path / "a"), str(tmp_path / "b")], names=["a", "b"])
  assert raised.value.problems == [
      "the runs of a group must share config.K, but a has 4 and b 6; train them in "
      "separate groups.",
      "the runs of a group must share config.batch_size, but a has 8 and b 16; train "
      "them in separate groups.",
      "the runs of a group must share config.delta_prompt_length, but a has 4 and b 6; "
      "train them in separate groups."]
  assert not os.path.exists(tmp_path / "a")  # refused before anything was written
  infinite = config_of(dict(M=-1, gamma=0.0, seed=0), schedule="stationary")
  finite = config_of(dict(M=4, gamma=0.0, seed=1), schedule="stationary")
  assert groups.problems([finite, infinite], ["f", "i"]) == [
      "M = ∞ (i) and a finite M (f) cannot share a group (their task sets differ in "
      "kind); train them in separate groups."]


def test_the_launcher_groups_compatible_points_in_sweep_order(tmp_path):
  config = tmp_path / "sweep_config.py"
  config.write_text(
      "from temporal_icl.tests import tiny_config\n"
      "from temporal_icl import sweeps\n"
      "get_config = tiny_config.get_config\n"
      "def get_sweep():\n"
      "  return sweeps.chain(sweeps.product(M=[1, 2, 3], seed=[0, 1]),\n"
      "                      sweeps.product(batch_size=[16], seed=[0, 1]))\n")
  jobs = sweeps.commands(str(config), str(tmp_path / "runs"), runs_per_process=4)
  assert [[r["name"] for r in job["runs"]] for job in jobs] == [
      ["M1-seed0", "M1-seed1", "M2-seed0", "M2-seed1"], ["M3-seed0", "M3-seed1"],
      ["batch_size16-seed0", "batch_size16-seed1"]]  # another batch: its own group
  assert jobs[1]["args"][-3:] == [f"--workdir={tmp_path / 'runs'}", "--group=M3-seed0",
                                  "--group=M3-seed1"]
  solo = sweeps.commands(str(config), str(tmp_path / "runs"), runs_per_process=1)
  assert [len(j["runs"]) for j in solo] == [1] * 8
  assert solo[0]["args"][-1] == f"--workdir={tmp_path / 'runs' / 'M1-seed0'}"


def test_the_binary_trains_a_group_on_two_devices_like_its_solo_commands(tmp_path):
  group = binary.run_main(tmp_path / "g", "--group=gamma0-seed0,gamma0.2-seed0", devices=2)
  assert group.returncode == 0, group.stderr[-3000:]
  solo = binary.run_main(tmp_path / "solo", "--config.gamma=0.2", "--config.seed=0")
  assert solo.returncode == 0, solo.stderr[-3000:]
  assert_same_run(tmp_path / "g" / "gamma0.2-seed0", tmp_path / "solo")
  assert "gamma0.2-seed0: step 48: on test tasks nearer" in group.stdout
  before = {p: p.read_bytes() for p in (tmp_path / "g").rglob("*") if p.is_file()}
  again = binary.run_main(tmp_path / "g", "--group=all")  # both finished: nothing to do
  assert again.returncode == 0
  assert {p: p.read_bytes() for p in (tmp_path / "g").rglob("*") if p.is_file()} == before
  for args, message in (
      (["--group=gamma7-seed0"], "error: --group names gamma7-seed0, not a run of the "
       "sweep of temporal_icl/tests/tiny_config.py (its runs: gamma0-seed0, "
       "gamma0.2-seed0; or --group=all)."),
      (["--group=all", "--config.gamma=0.5"], "error: --config.gamma is set on the "
       "command line, but the group's sweep sets it for each run; leave it out (or train "
       "the runs one by one).")):
    result = binary.run_main(tmp_path / "bad", *args)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1] == message
