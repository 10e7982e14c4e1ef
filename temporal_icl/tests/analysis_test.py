"""Developmental analysis in the binary: LLC action, trajectory states, figures, ED."""

import dataclasses
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from temporal_icl.analysis import essential_dynamics
from temporal_icl.analysis import export
from temporal_icl.analysis import plots
from temporal_icl.common import step_specs
from temporal_icl.common import workdir as workdir_lib
from temporal_icl.core import data
from temporal_icl.core import experiment
from temporal_icl.measurements.methods import sgld as sgld_lib
from temporal_icl.measurements.methods import snapshot_file
from temporal_icl.tests import binary
from temporal_icl.tests import tiny_config
from temporal_icl.training import train
from temporal_icl.training import validation


def test_step_specs():
  assert step_specs.parse("", 100) == []
  assert step_specs.parse("every:40", 100) == [0, 40, 80, 100]
  assert step_specs.parse("5, 50,500", 100) == [5, 50]
  log = step_specs.parse("log:8", 1000)
  assert log[0] == 0 and log[1] == 1 and log[-1] == 1000 and len(log) == 9
  assert all(b / a >= 2 for a, b in zip(log[2:], log[3:]))  # log-spaced, not linear
  assert step_specs.parse("every:40+5,7", 100) == [0, 5, 7, 40, 80, 100]  # a union
  assert step_specs.parse(25, 100) == step_specs.parse("every:25", 100)
  for bad in ("log:0", "every:x", "1,a", "-3", "every:40+log:"):
    with pytest.raises(step_specs.StepSpecError):
      step_specs.parse(bad, 100)


def test_bad_analysis_config_is_one_sentence_each():
  c = tiny_config.get_config()
  c.llc_steps, c.trajectory_steps = "log:x", "every:0"
  problems = validation.find_problems(c)
  assert len(problems) == 2
  assert any("llc_steps" in p for p in problems)
  assert any("trajectory_steps" in p for p in problems)
  c.llc_steps, c.trajectory_steps = "log:4", ""
  c.llc.num_burnin_steps, c.llc.localization, c.llc.dataset_size = -1, -2.0, 8
  assert sorted(validation.find_problems(c)) == [
      "config.llc.batch_size=64 must be <= config.llc.dataset_size=8.",
      "config.llc.localization=-2.0 must be >= 0 (0: no pull).",
      "config.llc.num_burnin_steps=-1 must be >= 0."]


@pytest.fixture(scope="module")
def analysed_runs(tmp_path_factory):
  """Two tiny gaussian-head runs with every analysis on (shared by the tests)."""
  root = tmp_path_factory.mktemp("runs")
  workdirs = []
  for gamma in (0.0, 0.5):
    c = tiny_config.get_config()
    c.head, c.gamma = "gaussian", gamma
    c.energy_distance_steps = "every:24"
    c.snapshot_steps, c.pr_generation_steps, c.num_pr_samples = "every:8", 4, 32
    c.llc_steps = "0,48"
    c.llc.num_draws, c.llc.num_chains, c.llc.dataset_size = 20, 2, 64
    c.llc.batch_size = 16
    c.trajectory_steps = "log:6"
    w = str(root / f"gamma{gamma}")
    train.train_and_evaluate(c, w)
    workdirs.append(w)
  return workdirs


def test_llc_action_writes_the_estimates_of_the_runs_states(analysed_runs):
  """llc/* at steps 0 and 48 are temporal_icl.measurements.methods.sgld's estimates (tested
  on its own in
  llc_test) for the run's state at that step, on llc.dataset_size sequences of the
  task set of that step drawn with the run's llc key, with the step folded into
  the SGLD key (measurements/llc.py's docstring)."""
  workdir = analysed_runs[0]
  scalars = export.read_scalars(workdir)
  config = workdir_lib.load_config(workdir)
  experiment.parse_gin(config)
  exp = experiment.build(config)
  run = experiment.run_data(config)
  # Committed to the device like the restored state, so that one program serves both.
  initial = jax.device_put(experiment.init_state(exp, config), jax.devices()[0])
  with workdir_lib.checkpoint_manager(workdir) as manager:
    final = workdir_lib.restore(manager, 48, initial)
  sgld = sgld_lib.SGLDConfig(**{f.name: config.llc[f.name]
                                for f in dataclasses.fields(sgld_lib.SGLDConfig)})
  assert (sgld.num_chains, sgld.num_draws, sgld.batch_size, config.llc.dataset_size) == (
      2, 20, 16, 64)
  estimate = sgld_lib.make_llc_estimator(lambda params, batch: exp.loss(params, *batch), sgld)
  expected = {"llc/mean": [], "llc/std": [], "llc/loss_below_init_fraction": []}
  for step, state in ((0, initial), (48, final)):
    dataset = data.sample_sequences(
        run.keys["llc"], experiment.training_tasks(exp, state.schedule),
        config.llc.dataset_size, config.K, config.noise_var, num_tasks=run.num_tasks)
    result = estimate(state.params, dataset, jax.random.fold_in(run.keys["llc"], step))
    expected["llc/mean"].append(float(result.mean))
    expected["llc/std"].append(float(result.std))
    expected["llc/loss_below_init_fraction"].append(float(result.loss_below_init_fraction))
  for tag, values in expected.items():
    steps, written = export.scalar_array(scalars[tag])
    assert list(steps) == [0, 48], tag
    np.testing.assert_allclose(written, values, rtol=1e-3, atol=1e-5, err_msg=tag)
  # The two steps' models differ, and so do their estimates.
  assert expected["llc/mean"][0] != expected["llc/mean"][1]


def test_trajectory_keeps_the_log_spaced_states(analysed_runs):
  kept = sorted(int(d) for d in os.listdir(os.path.join(analysed_runs[0], "trajectory"))
                if d.isdigit())
  assert kept == step_specs.parse("log:6", 48)


@pytest.fixture
def drawn(monkeypatch):
  """{file name: matplotlib Figure} of every figure the plots module saves."""
  figures = {}
  save = plots.finish

  def keep(fig, path, **kwargs):
    figures[os.path.basename(path)] = fig
    return save(fig, path, **kwargs)

  monkeypatch.setattr(plots, "finish", keep)
  return figures


def _lines(ax):
  """{label: (x, y)} of an axis's labelled lines."""
  return {l.get_label(): (np.asarray(l.get_xdata()), np.asarray(l.get_ydata()))
          for l in ax.get_lines() if not l.get_label().startswith("_")}


def _assert_series(line, scalars, tag):
  steps, values = export.scalar_array(scalars[tag])
  np.testing.assert_array_equal(line[0], steps)
  np.testing.assert_array_equal(line[1], values)


def test_every_run_figure_draws_the_runs_records(analysed_runs, tmp_path, drawn):
  workdir = analysed_runs[1]
  paths = plots.plot_run(workdir, str(tmp_path))
  assert sorted(os.path.basename(p) for p in paths) == [
      "deltas.png", "energy.png", "llc.png", "losses.png", "prior.png"]
  assert all(os.path.getsize(p) > 10_000 for p in paths)
  scalars = export.read_scalars(workdir)

  train_ax, test_ax = drawn["losses.png"].axes[:2]
  for ax, split in ((train_ax, "train"), (test_ax, "test")):
    lines = _lines(ax)
    for who in ("model", "ridge", "dmmse"):
      _assert_series(lines[who], scalars, f"{split}_error_{who}")
  nll_axis = drawn["losses.png"].axes[2]  # the gaussian head's NLL has its own axis
  _assert_series(_lines(nll_axis)["training loss"], scalars, "train_loss")

  lines = _lines(drawn["deltas.png"].axes[0])
  for split in ("train", "test"):
    _assert_series(lines[f"Δ_PT,dMMSE ({split})"], scalars, f"{split}_delta_dmmse")
    _assert_series(lines[f"Δ_PT,Ridge ({split})"], scalars, f"{split}_delta_ridge")

  lines = _lines(drawn["energy.png"].axes[0])
  _assert_series(lines["to N(0, I) (ridge prior)"], scalars, "energy_dist/prior/ridge")
  _assert_series(lines["to the task set (dMMSE prior)"], scalars, "energy_dist/prior/dmmse")

  llc_ax = drawn["llc.png"].axes[0]
  _assert_series(_lines(llc_ax)["λ̂ (mean over chains)"], scalars, "llc/mean")
  _, mean = export.scalar_array(scalars["llc/mean"])
  _, std = export.scalar_array(scalars["llc/std"])
  band = llc_ax.collections[0].get_paths()[0].vertices[:, 1]
  np.testing.assert_allclose([band.min(), band.max()],
                             [(mean - std).min(), (mean + std).max()], rtol=1e-6)

  snaps = snapshot_file.load(os.path.join(workdir, snapshot_file.FILENAME))
  prior_ax = drawn["prior.png"].axes[0]
  density = prior_ax.collections[0].get_array().reshape(-1, len(snaps["steps"]))
  # One column per snapshot, each a density of that snapshot's first coordinates.
  bins = prior_ax.collections[0].get_coordinates()[:, 0, 1]
  for i, row in enumerate(snaps["pr"][..., 0]):
    expected, _ = np.histogram(row, bins=bins, density=True)
    np.testing.assert_allclose(density[:, i], expected, rtol=1e-6)
  x, y = _lines(prior_ax)["training tasks"]
  np.testing.assert_array_equal(x, snaps["steps"])
  np.testing.assert_array_equal(y, snaps["tasks"][:, 0, 0])


def test_phase_diagram_draws_each_runs_final_deltas(analysed_runs, tmp_path, drawn):
  table = plots.sweep_table(analysed_runs)
  assert sorted(table) == ["stationary", "γ=0.5"]
  assert all(list(rows) == [4] for rows in table.values())  # M = 4, one seed each
  path = plots.plot_phase_diagram(analysed_runs, str(tmp_path / "phase.png"))
  assert os.path.getsize(path) > 10_000
  dmmse_ax, ridge_ax, gap_ax = drawn["phase.png"].axes
  for workdir in analysed_runs:
    final = plots.final_metrics(workdir, "train")
    label = schedules_label(final["config"])
    expected = (final["dmmse"], final["ridge"], final["dmmse"] - final["ridge"])
    for ax, value in zip((dmmse_ax, ridge_ax, gap_ax), expected):
      line, = [c.lines[0] for c in ax.containers if c.get_label() == label]  # errorbars
      x, y = line.get_xdata(), line.get_ydata()
      assert list(y) == pytest.approx([value], rel=1e-6)
      assert x[0] == pytest.approx(4, rel=0.1)  # at M = 4 (offset so lines do not hide)
  assert plots.find_runs(os.path.dirname(analysed_runs[0])) == sorted(analysed_runs)


def schedules_label(config):
  from temporal_icl.core import schedules  # pylint: disable=g-import-not-at-top
  return schedules.label(config)


def test_sweep_summary_table_matches_the_final_metrics(analysed_runs):
  rows = plots.summary_markdown(analysed_runs).splitlines()[2:]
  assert [r.split(" | ")[1] for r in rows] == ["stationary", "γ=0.5"]
  for row, workdir in zip(rows, analysed_runs):
    cells = row.strip("| ").split(" | ")
    train = plots.final_metrics(workdir, "train")
    test = plots.final_metrics(workdir, "test")
    expected = [train["dmmse"], train["ridge"], test["dmmse"], test["ridge"]]
    means = [float(c.split(" ± ")[0]) for c in cells[3:7]]
    assert means == pytest.approx(expected, abs=6e-4)  # printed to 3 decimals
    assert all(c.endswith("± 0.000") for c in cells[3:7])  # one seed: no spread
    nearer = "ridge" if train["ridge"] < train["dmmse"] else "dMMSE"
    assert cells[7] == f"{nearer} 1/1"
    assert cells[8] == f"{train['ridge'] / train['dmmse']:.1f}"  # one seed: one ratio
    assert cells[9] == f"{test['dmmse'] / test['ridge']:.1f}"


def test_essential_dynamics_projects_both_runs(analysed_runs, tmp_path):
  result = essential_dynamics.essential_dynamics(analysed_runs, probe_size=16)
  steps = step_specs.parse("log:6", 48)
  rows = []
  for i in range(2):
    assert list(result[f"run{i}/steps"]) == steps
    assert result[f"run{i}/projection"].shape == (len(steps), 2)
    rows.append(result[f"run{i}/projection"])
  # The joint PCA is centred on all rows together: projections average to zero.
  joint = np.concatenate(rows).astype(np.float64)
  np.testing.assert_allclose(joint.mean(0), 0, atol=1e-4)
  variance = result["explained_variance"]
  assert 0 < variance[1] <= variance[0] <= 1
  # Projections on principal components are uncorrelated, and each one's sum of
  # squares is its singular value squared, so their ratio is that of the variances.
  norms = (joint**2).sum(0)
  assert abs(joint[:, 0] @ joint[:, 1]) < 1e-4 * np.sqrt(norms[0] * norms[1])
  np.testing.assert_allclose(norms[0] / norms[1], variance[0] / variance[1], rtol=1e-4)
  # The two runs start from the same initialisation (same seed): same first point.
  np.testing.assert_allclose(rows[0][0], rows[1][0], atol=1e-5)
  path = essential_dynamics.plot(result, ["a", "b"], str(tmp_path / "ed.png"))
  assert os.path.getsize(path) > 10_000


def test_joint_pca_recovers_a_planted_plane():
  rng = np.random.default_rng(0)
  basis = np.linalg.qr(rng.normal(size=(50, 2)))[0].T  # [2, 50] orthonormal
  coords = rng.normal(size=(200, 2)) * [5.0, 2.0]
  rows = coords @ basis + 3.0 + 1e-3 * rng.normal(size=(200, 50))
  _, directions, variance = essential_dynamics.joint_pca(rows, 2)
  overlap = np.abs(directions @ basis.T)  # |cos| between found and planted axes
  np.testing.assert_allclose(np.sort(overlap.max(1)), [1, 1], atol=1e-4)
  assert variance.sum() > 0.999


def test_prior_heat_map_reads_snapshots(analysed_runs):
  """The snapshots of the γ = 0.5 run (its tasks move): every 8 steps, 32 PMC samples
  each, and the task set of the state at the snapshot's step."""
  workdir = analysed_runs[1]
  snaps = snapshot_file.load(os.path.join(workdir, snapshot_file.FILENAME))
  np.testing.assert_array_equal(snaps["steps"], [0, 8, 16, 24, 32, 40, 48])
  assert snaps["pr"].shape == (7, 32, 2)
  config = workdir_lib.load_config(workdir)
  experiment.parse_gin(config)
  exp = experiment.build(config)
  initial = experiment.init_state(exp, config)
  with workdir_lib.checkpoint_manager(workdir) as manager:
    final = workdir_lib.restore(manager, 48, initial)
  first, last = (np.asarray(experiment.training_tasks(exp, state.schedule))
                 for state in (initial, final))
  np.testing.assert_array_equal(snaps["tasks"][0], first)
  np.testing.assert_array_equal(snaps["tasks"][-1], last)
  assert np.all(first != last)  # the tasks moved


def _cli(module, *args):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", f"temporal_icl.analysis.{module}", *args],
                        cwd=binary.REPO, env=env, capture_output=True, text=True,
                        timeout=300)


@pytest.mark.parametrize("module, args, message", [
    ("export", ["--workdir={tmp}", "--out={tmp}/x.json"],
     "{tmp} is not a run directory (it has no config.json)."),
    ("plots", ["--sweep_dir={tmp}"], "no runs (directories with config.json) under "
     "--sweep_dir={tmp}."),
    ("essential_dynamics", ["--workdirs={missing}"], "{missing} does not exist."),
])
def test_readers_refuse_what_is_not_a_run_in_one_sentence(tmp_path, module, args, message):
  fill = lambda s: s.format(missing=tmp_path / "missing", tmp=tmp_path)
  result = _cli(module, *map(fill, args))
  assert result.returncode == 2, result.stderr[-2000:]
  assert result.stderr.strip().splitlines()[-1] == "error: " + fill(message)
  assert not os.path.exists(tmp_path / "missing")  # nothing created


def test_a_run_directory_is_recognised(analysed_runs, tmp_path):
  workdir_lib.require_run(analysed_runs[0])
  with pytest.raises(workdir_lib.RunDirError, match="does not exist"):
    workdir_lib.require_run(str(tmp_path / "missing"))
  with pytest.raises(workdir_lib.RunDirError, match="has no config.json"):
    workdir_lib.require_run(str(tmp_path))


def test_essential_dynamics_refuses_a_run_without_trajectory(analysed_runs, tmp_path):
  c = tiny_config.get_config()
  plain = str(tmp_path / "plain")
  train.train_and_evaluate(c, plain)
  with pytest.raises(workdir_lib.RunDirError, match="kept no trajectory states"):
    essential_dynamics.essential_dynamics([analysed_runs[0], plain], probe_size=8)


@pytest.mark.parametrize("epsilon, localization", [(1e-3, 1.0), (1e-4, 100.0)])
def test_llc_warns_when_the_estimate_is_not_at_a_minimum(caplog, epsilon, localization):
  from temporal_icl.core import experiment  # pylint: disable=g-import-not-at-top
  from temporal_icl import measurements  # pylint: disable=g-import-not-at-top
  c = tiny_config.get_config()
  c.llc.num_draws, c.llc.num_chains, c.llc.dataset_size, c.llc.batch_size = 20, 2, 64, 16
  c.llc.epsilon, c.llc.localization, c.llc_steps = epsilon, localization, "0"
  experiment.parse_gin(c)
  exp = experiment.build(c)
  state = experiment.init_state(exp)

  class NoWriter:
    def write_scalars(self, *_):
      pass

  result = measurements.measure_once("llc", c, exp, state, NoWriter())
  # With these seeds: 55% of draws below the start (warned), then 47.5% (not).
  warned = "not near a local minimum" in caplog.text
  assert warned == (float(result["llc/loss_below_init_fraction"]) > 0.5)
  assert warned == (epsilon == 1e-3)


def test_launcher_summary_marks_unfinished_runs_and_leaves_them_out(analysed_runs, tmp_path,
                                                                    capsys):
  import shutil  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, os.path.join(binary.REPO, "launch"))
  import local_launch  # pylint: disable=g-import-not-at-top
  finished, unfinished = analysed_runs[0], str(tmp_path / "stopped")
  shutil.copytree(analysed_runs[1], unfinished)
  os.remove(os.path.join(unfinished, "FINISHED"))  # as if stopped before its end
  jobs = []
  for name, workdir in (("done_run", finished), ("stopped_run", unfinished)):
    job = local_launch.Job({"name": name, "workdir": workdir, "args": []})
    job.status = "done" if workdir == finished else "stopped"
    jobs.append(job)
  local_launch.summary(jobs, str(tmp_path))
  lines = {l.split()[0]: l for l in capsys.readouterr().out.splitlines() if l.strip()}
  assert "UNFINISHED" not in lines["done_run"]
  assert "stopped, UNFINISHED" in lines["stopped_run"] and "(at step 48)" in lines["stopped_run"]
  assert "(1 unfinished runs left out)" in lines["Phase"]
