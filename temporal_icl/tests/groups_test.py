"""Run groups: runs trained as one program equal the same runs trained alone."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from temporal_icl import measurements
from temporal_icl.analysis import export
from temporal_icl.common import workdir as workdir_lib
from temporal_icl.core import experiment
from temporal_icl.core.schedules import mala
from temporal_icl.launching import sweeps
from temporal_icl.measurements.methods import predictive
from temporal_icl.measurements.methods import snapshot_file as snapshots_lib
from temporal_icl.tests import binary
from temporal_icl.tests import tiny_config
from temporal_icl.training import groups
from temporal_icl.training import train
from temporal_icl.training import validation

TOLERANCE = dict(rtol=1e-5, atol=1e-5)  # "within 1e-5": relative, or absolute near 0
PADDED = 1024  # the largest M of the phase sweep (configs/mala.py), beside M = 1 … 512
# Runs of a group differ in M, γ, the seed and the rate.  Run 0 is padded as widely as
# the phase sweep pads (M = 1 beside M = 1024), and drifts (γ > 0, so MALA rejects
# some moves and its acceptance rate tests the padding's mask).
POINTS = [dict(M=1, gamma=1.0, seed=0),
          dict(M=PADDED, gamma=0.2, seed=1, learning_rate=1e-3)]


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
    assert state.schedule.tasks.shape[0] == (1 if name.startswith("M1-") else PADDED)
  rates = scalars(tmp_path / names[0])["mala/acceptance_rate"]  # equal to solo's above
  assert sorted(rates) == list(range(0, 49, 8)) and 0.5 < rates[48] < 1


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
  # Run 0, padded in both M and R (2 -> 4 tasks, 3 -> 6 segments), against its solo
  # run; the group's widest run is compared with its solo run by the MALA tests.
  alone = train.train_and_evaluate(configs()[0], str(tmp_path / "alone" / names[0]))
  assert_same_run(tmp_path / "g" / names[0], tmp_path / "alone" / names[0])
  assert_same_states(states[0], alone)
  assert states[1].schedule.starts.shape == (4, 6)  # and run 1 kept its own shape


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
      "from temporal_icl.launching import sweeps\n"
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


def test_the_binary_trains_a_group_on_two_devices_like_its_solo_commands(tmp_path,
                                                                        two_device_run):
  group = binary.run_main(tmp_path / "g", "--group=gamma0-seed42,gamma0.05-seed42", devices=2)
  assert group.returncode == 0, group.stderr[-3000:]
  # The sweep's second run is the plain tiny config: the session's solo command on 2
  # devices (conftest.two_device_run).
  assert_same_run(tmp_path / "g" / "gamma0.05-seed42", two_device_run)
  assert "gamma0.05-seed42: step 48: on test tasks nearer" in group.stdout
  before = {p: p.read_bytes() for p in (tmp_path / "g").rglob("*") if p.is_file()}
  again = binary.run_main(tmp_path / "g", "--group=all")  # both finished: nothing to do
  assert again.returncode == 0
  assert {p: p.read_bytes() for p in (tmp_path / "g").rglob("*") if p.is_file()} == before


def test_a_group_the_sweep_does_not_have_or_a_swept_key_set_again_is_one_sentence():
  # main prints each as "error: <sentence>" and exits 2 (cli.fail, which binary_test
  # checks through the binary for the command line's other sentences).
  with pytest.raises(ValueError) as raised:
    sweeps.select(binary.TINY, ["gamma7-seed0"])
  assert str(raised.value) == (
      "--group names gamma7-seed0, not a run of the sweep of "
      "temporal_icl/tests/tiny_config.py (its runs: gamma0-seed42, gamma0.05-seed42; or "
      "--group=all).")
  points = sweeps.select(binary.TINY, ["all"])
  sweeps.refuse_overrides_of_swept_keys(points, ["--config.M=3", "--group=all"])
  with pytest.raises(ValueError) as raised:
    sweeps.refuse_overrides_of_swept_keys(points, ["--config.gamma=0.5", "--group=all"])
  assert str(raised.value) == (
      "--config.gamma is set on the command line, but the group's sweep sets it for each "
      "run; leave it out (or train the runs one by one).")


# --- Padding: a run's own M inside a group's padded task set ---------------------------


def _padded_tasks(M, D=3, fill=1e3):
  """(tasks [M, D], the same padded to PADDED rows of `fill`: far from every real task)."""
  tasks = jax.random.normal(jax.random.PRNGKey(1), (M, D))
  return tasks, jnp.concatenate([tasks, jnp.full((PADDED - M, D), fill)])


@pytest.mark.parametrize("M", [1, 3])
def test_the_dmmse_prior_of_a_padded_task_set_draws_only_the_runs_own_tasks(M):
  tasks, padded = _padded_tasks(M)
  key, n = jax.random.PRNGKey(2), 3000
  sample = np.asarray(predictive.sample_dmmse_prior(key, padded, n, M))
  # Exact: the draws a solo run makes from its unpadded set.
  np.testing.assert_array_equal(sample, predictive.sample_dmmse_prior(key, tasks, n))
  # Statistical: every draw is one of the M tasks, each drawn about n/M times.
  distance = np.abs(sample[:, None] - np.asarray(tasks)[None]).sum(-1)  # [n, M]
  np.testing.assert_array_equal(distance.min(1), 0.0)
  counts = np.bincount(distance.argmin(1), minlength=M)
  sd = np.sqrt(n * (1 / M) * (1 - 1 / M))  # binomial; 0 for M = 1
  np.testing.assert_allclose(counts, n / M, atol=5 * sd)
  # As a group traces it: vmapped over the runs, M a traced int32 per run.
  drawn = jax.vmap(lambda t, m: predictive.sample_dmmse_prior(key, t, n, m))(
      jnp.stack([padded, padded]), jnp.asarray([M, PADDED], jnp.int32))
  np.testing.assert_array_equal(drawn[0], sample)
  assert np.any(np.asarray(drawn[1]) == 1e3)  # the other run's M does reach the padding


def test_the_acceptance_rate_of_a_padded_mala_state_counts_only_the_runs_own_tasks():
  # By hand: 3 tasks, 4 proposals each, 6 accepted; the padding counts 4 of 4 each.
  accepted = jnp.concatenate([jnp.asarray([3, 1, 2], jnp.int32),
                              jnp.full((PADDED - 3,), 4, jnp.int32)])
  state = mala.State(tasks=jnp.zeros((PADDED, 2)), gamma=jnp.float32(0.5),
                     accepted=accepted, proposed=jnp.int32(4))
  assert float(mala.acceptance_rate(state, 3)) == 0.5
  assert float(jax.jit(mala.acceptance_rate)(state, jnp.int32(3))) == 0.5  # traced M
  assert float(mala.acceptance_rate(state)) == (6 + 4 * (PADDED - 3)) / (4 * PADDED)


def test_a_padded_mala_chain_accepts_as_its_solo_chain():
  """40 MALA steps of M = 3 tasks alone and padded to PADDED (zeros, as a group pads
  them): the same moves (to float rounding), the same acceptance rate, while the
  padding moves too."""
  M = 3
  config, wide = tiny_config.get_config(), tiny_config.get_config()
  config.M, config.gamma, wide.M = M, 0.5, PADDED
  solo = mala.init(jax.random.PRNGKey(0), config)
  like = jax.eval_shape(lambda: mala.init(jax.random.PRNGKey(0), wide))
  states = groups.stack([groups.pad(solo, like, {}), groups.pad(solo, like, {})])
  chain = lambda s: jax.lax.fori_loop(
      0, 40, lambda i, s: mala.update(s, i, jax.random.fold_in(jax.random.PRNGKey(9), i)), s)
  solo = jax.jit(chain)(solo)
  states = jax.jit(jax.vmap(chain))(states)
  rates = jax.vmap(mala.acceptance_rate)(states, jnp.asarray([M, PADDED], jnp.int32))
  padded = groups.take(states, 0)
  np.testing.assert_allclose(padded.tasks[:M], solo.tasks, **TOLERANCE)
  np.testing.assert_array_equal(padded.accepted[:M], solo.accepted)
  assert np.all(np.asarray(padded.accepted[M:]) > 0)
  assert float(rates[0]) == float(mala.acceptance_rate(solo)) < 1.0
  assert float(rates[1]) != float(rates[0])  # the padding's counts would show


def every_measurement(config):
  """`config` with every measurement the README lists on, sized for a test."""
  config.num_steps, config.head = 32, "gaussian"
  config.energy_distance_steps = config.llc_steps = config.snapshot_steps = "every:16"
  config.trajectory_steps = "log:4"
  config.llc.num_draws, config.llc.num_chains, config.llc.dataset_size = 10, 2, 32
  config.llc.batch_size = 16
  config.num_pr_samples, config.pr_generation_steps = 16, 4
  return config


@pytest.mark.parametrize("name", ["evaluation", "energy_distance", "llc", "prior_snapshots"])
def test_a_measurement_of_a_padded_state_is_the_runs_own(name):
  """In a group, a run's measurements see its task set padded to the group's largest
  M (here M = 3 in 1024 rows of zeros, as the phase sweep pads M = 1 beside 1024),
  with RunData.num_tasks = 3.  Each must then compute what it computes on the run's
  own state: its dMMSE prior, SGLD data and baselines drawn from the 3 tasks only.
  (The slow test above checks the same end to end, through training.)"""
  config = every_measurement(config_of(dict(M=3, gamma=1.0, seed=0)))
  exp = experiment.build(config)
  solo = experiment.init_state(exp, config)
  wide = every_measurement(config_of(dict(M=PADDED, gamma=1.0, seed=0)))
  like = jax.eval_shape(lambda: experiment.init_state(experiment.build(wide), wide))
  padded = groups.pad(solo, like, {})
  assert padded.schedule.tasks.shape == (PADDED, 2)
  alone, grouped = (measurements.measure_once(name, config, exp, s) for s in (solo, padded))
  assert sorted(alone) == sorted(grouped)
  for key in alone:
    got = np.asarray(grouped[key])
    if key == "tasks":  # the snapshot's task set: the padded one, cut when saved
      got = got[:config.M]
    np.testing.assert_allclose(got, alone[key], err_msg=key, **TOLERANCE)


def test_snapshots_draw_fresh_rollouts_at_each_step():
  """The prior snapshots' rollouts of one state are the same draws at the same step
  and new draws at another step (their key folds the step in): the snapshots of a
  run are independent samples of its implicit prior, not one sample re-used."""
  config = every_measurement(config_of(dict(M=3, gamma=1.0, seed=0)))
  exp = experiment.build(config)
  state = experiment.init_state(exp, config)
  later = state._replace(step=jnp.asarray(16, jnp.int32))  # the same parameters
  first, again, other = (measurements.measure_once("prior_snapshots", config, exp, s)
                         for s in (state, state, later))
  np.testing.assert_array_equal(first["pr"], again["pr"])
  assert not np.any(np.isclose(first["pr"], other["pr"]).all(axis=-1))


def assert_same_saved_states(grouped, alone, config):
  """The trajectory states of two workdirs, restored as the solo run's own state."""
  exp = experiment.build(config)
  like = experiment.init_state(exp, config)
  managers = [workdir_lib.trajectory_manager(str(w)) for w in (grouped, alone)]
  steps = [sorted(m.all_steps()) for m in managers]
  assert steps[0] == steps[1] and len(steps[0]) >= 4
  for step in steps[0]:
    assert_same_states(*(workdir_lib.restore(m, step, like) for m in managers))


@pytest.mark.slow
def test_a_padded_run_with_every_measurement_equals_its_solo_run(tmp_path):
  """M = 3 beside M = 1024, both drifting, with every measurement the README lists:
  run 0's task set, MALA counters, training and LLC data, dMMSE baselines, the dMMSE
  prior of its energy distance and its snapshots' tasks all sit in arrays of 1024
  rows.  Slow: 233 s (222 CPU-seconds) on the 2-core machine with a cold compile
  cache, as each measurement compiles solo and vmapped, and those due at step 0
  twice (their train-metrics argument changed type after the first chunk)."""
  points = [dict(M=3, gamma=1.0, seed=0), dict(M=PADDED, gamma=0.01, seed=1,
                                                learning_rate=1e-3)]
  names = names_of(points)
  configs = lambda: [every_measurement(config_of(p)) for p in points]
  states = train.train_group(configs(), [str(tmp_path / "g" / n) for n in names],
                             names=names)
  alone = train.train_and_evaluate(configs()[0], str(tmp_path / names[0]))
  grouped, solo = tmp_path / "g" / names[0], tmp_path / names[0]
  assert_same_run(grouped, solo)  # files, configs, every scalar at every step
  assert_same_states(states[0], alone)
  assert states[0].schedule.tasks.shape == (3, 2)  # unpadded
  tags = scalars(grouped)
  for tag in ("mala/acceptance_rate", "test_delta_dmmse", "train_delta_dmmse"):
    assert sorted(tags[tag]) == [0, 8, 16, 24, 32], tag
  for tag in ("energy_dist/prior/dmmse", "energy_dist/prior/ridge", "llc/mean", "llc/std",
              "llc/loss_below_init_fraction"):
    assert sorted(tags[tag]) == [0, 16, 32], tag
  assert 0 < tags["mala/acceptance_rate"][32] < 1  # some moves were rejected
  a, b = (snapshots_lib.load(str(w / "snapshots.npz")) for w in (grouped, solo))
  assert list(a["steps"]) == list(b["steps"]) == [0, 16, 32]
  assert a["tasks"].shape == b["tasks"].shape == (3, 3, 2)  # the run's own M
  for name in ("losses", "tasks", "pr", "delta_dmmse", "delta_ridge"):
    np.testing.assert_allclose(a[name], b[name], err_msg=name, **TOLERANCE)
  assert_same_saved_states(grouped, solo, configs()[0])
