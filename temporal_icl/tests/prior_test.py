"""Predictive Monte Carlo, the energy-distance action and prior-tracking snapshots."""

import gin
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from configs import prior_tracking
from temporal_icl.analysis import export
from temporal_icl.core import experiment
from temporal_icl.measurements.methods import predictive
from temporal_icl.measurements.methods import snapshot_file
from temporal_icl.tests import tiny_config
from temporal_icl.training import train


@pytest.fixture(autouse=True)
def paper_gin():
  gin.clear_config()
  gin.parse_config_files_and_bindings(["configs/model/paper.gin"], [])
  yield
  gin.clear_config()


def _params(config):
  exp = experiment.build(config)
  return experiment.init_state(exp).params


def _config(head="gaussian", K=6):
  c = tiny_config.get_config()
  c.head, c.K, c.model.num_blocks = head, K, 2
  return c


@pytest.mark.parametrize("head", ["gaussian", "mog"])
@pytest.mark.parametrize("with_prompt", [False, True])
def test_cached_sampler_equals_full_recompute(head, with_prompt):
  c = _config(head)
  params = _params(c)
  prompt = (jnp.array([[0.5, -1.0], [2.0, 0.3]]), jnp.array([1.0, -0.4])) \
      if with_prompt else None
  key, net = jax.random.PRNGKey(7), predictive.network(c)
  cached = jax.jit(lambda p: predictive.rollout(p, net, key, 9, 4, prompt))(params)
  full = jax.jit(lambda p: predictive.rollout_full_recompute(p, net, key, 9, 4, prompt))(params)
  np.testing.assert_array_equal(cached[0], full[0])
  np.testing.assert_allclose(cached[1], full[1], rtol=1e-5, atol=1e-5)
  # The samples are random (not, say, the predictive mean): different keys differ.
  other = predictive.rollout(params, net, jax.random.PRNGKey(8), 9, 4, prompt)
  assert np.abs(np.asarray(other[1]) - np.asarray(cached[1])).max() > 1e-2


def test_rollout_depends_on_the_prompt():
  c = _config()
  params = _params(c)
  key, net = jax.random.PRNGKey(0), predictive.network(c)
  a = predictive.rollout(params, net, key, 5, 3, (jnp.ones((1, 2)), jnp.array([3.0])))
  b = predictive.rollout(params, net, key, 5, 3, (jnp.ones((1, 2)), jnp.array([-3.0])))
  assert np.abs(np.asarray(a[1]) - np.asarray(b[1])).max() > 1e-4


def test_point_head_and_overlong_rollouts_are_refused():
  with pytest.raises(ValueError, match="needs a probabilistic head"):
    predictive.make_prior_sampler(_config("point"), 10, 3)
  c = _config()
  with pytest.raises(ValueError, match="exceeds the model's context of K=6"):
    predictive.rollout(_params(c), predictive.network(c), jax.random.PRNGKey(0), 2, 7)


def test_a_built_sampler_keeps_its_network_whatever_gin_holds_later():
  c = _config()
  params, key = _params(c), jax.random.PRNGKey(1)
  reference = predictive.make_prior_sampler(c, 8, 6)(params, key)
  sample = predictive.make_prior_sampler(c, 8, 6)  # built under paper.gin, not yet traced
  with gin.unlock_config():
    gin.bind_parameter("activation.name", "tanh")  # would change a network built now
  kept = sample(params, key)  # traced only now, while gin says tanh
  changed = predictive.make_prior_sampler(c, 8, 6)(params, key)
  np.testing.assert_array_equal(kept, reference)
  assert np.abs(np.asarray(changed) - np.asarray(kept)).max() > 1e-3


def test_prior_sampler_batches_give_one_ols_task_per_rollout():
  c = _config()
  params = _params(c)
  sample = predictive.make_prior_sampler(c, 10, 6, batch_size=4)  # 3 batches, last cut
  tasks = sample(params, jax.random.PRNGKey(1))
  assert tasks.shape == (10, 2) and np.all(np.isfinite(tasks))
  assert len(np.unique(np.asarray(tasks), axis=0)) == 10


def test_snapshot_steps():
  c = prior_tracking.get_config("equispaced")
  c.snapshot_steps, c.dense_snapshot_period, c.dense_snapshot_window = "every:10", 3, 7
  assert snapshot_file.snapshot_steps(c, 35, [12]) == {0, 10, 20, 30, 35, 12, 15, 18}
  c.dense_step_start, c.dense_step_end = 21, 26
  assert snapshot_file.snapshot_steps(c, 35, [12]) == {0, 10, 20, 30, 35, 21, 24}


def _tracking_config():
  c = tiny_config.get_config()
  c.head, c.schedule, c.gamma, c.R = "gaussian", "equispaced", 0.0, 3
  c.snapshot_steps, c.num_pr_samples, c.pr_generation_steps = "every:8", 20, 3
  c.dense_snapshot_period, c.dense_snapshot_window = 2, 4
  return c


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
  """Workdir of one uninterrupted run of `_tracking_config()` (tests only read it)."""
  workdir = tmp_path_factory.mktemp("tracked")
  train.train_and_evaluate(_tracking_config(), str(workdir))  # parses its gin files
  return workdir


def test_snapshots_file_has_the_spec_arrays(tracked_run):
  with np.load(tracked_run / "snapshots.npz") as f:
    got = {k: f[k] for k in f}
  np.testing.assert_array_equal(got["steps"], [0, 8, 16, 18, 24, 32, 34, 40, 48])
  np.testing.assert_array_equal(got["resample_steps"], [16, 32])
  shapes = {"losses": (9,), "tasks": (9, 4, 2), "pr": (9, 20, 2), "delta_dmmse": (9,),
            "delta_ridge": (9,)}
  for name, shape in shapes.items():
    assert got[name].shape == shape and got[name].dtype == np.float32, name
  assert got["steps"].dtype == np.int32 and got["resample_steps"].dtype == np.int32
  assert '"schedule": "equispaced"' in str(got["config"])
  # Tasks move exactly at the events and are constant between them.  A snapshot
  # at step s shows the tasks of the last step trained (s - 1), so an event at
  # 16 (the first step trained on new tasks) first shows at the snapshot of 18.
  changed = np.any(got["tasks"][1:] != got["tasks"][:-1], axis=(1, 2))
  np.testing.assert_array_equal(got["steps"][1:][changed], [18, 34])


def test_snapshots_survive_interruption(tracked_run, tmp_path):
  c = _tracking_config()
  train.train_and_evaluate(c, str(tmp_path / "part"), should_stop=lambda s: s >= 24)
  with np.load(tmp_path / "part" / "snapshots.npz") as f:
    assert f["steps"][-1] == 24
  train.train_and_evaluate(c, str(tmp_path / "part"))
  with np.load(tracked_run / "snapshots.npz") as a, \
       np.load(tmp_path / "part" / "snapshots.npz") as b:
    assert sorted(a) == sorted(b)
    for name in a:
      np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_energy_distance_action_and_its_independence_from_training(tmp_path):
  c = tiny_config.get_config()
  c.head = "gaussian"
  plain = train.train_and_evaluate(c, str(tmp_path / "plain"))
  c.energy_distance_steps = "every:16"
  c.snapshot_steps, c.pr_generation_steps = "every:16", 4
  measured = train.train_and_evaluate(c, str(tmp_path / "measured"))
  for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(measured)):
    np.testing.assert_array_equal(a, b)  # measurements never touch training keys
  stats = export.to_reference_json(str(tmp_path / "measured"))["stats"]
  measured_steps = [r["step"] for r in stats if "energy_dist/prior/ridge" in r]
  assert measured_steps == [0, 16, 32, 48]
  assert all(np.isfinite(r["energy_dist/prior/dmmse"]) for r in stats
             if "energy_dist/prior/dmmse" in r)
  acc = event_accumulator.EventAccumulator(
      str(tmp_path / "measured"), size_guidance={event_accumulator.TENSORS: 0})
  acc.Reload()
  assert {"prior/dim_0", "prior/dim_1"} <= set(acc.Tags()["tensors"])
