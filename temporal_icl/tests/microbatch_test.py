"""Microbatched gradients: the batch's mean loss and gradient, in cache-sized parts."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import base
from configs import demo
from temporal_icl.core import experiment
from temporal_icl.tests import binary
from temporal_icl.tests import tiny_config
from temporal_icl.training import groups
from temporal_icl.training import microbatch
from temporal_icl.training import train


def tiny_batch(batch_size=8):
  config = tiny_config.get_config()
  config.batch_size = batch_size
  exp = experiment.build(config)
  state = experiment.init_state(exp)
  xs, ys = experiment.training_batch(exp, experiment.run_data(config), state.schedule, 3)
  return exp, state.params, xs, ys


@pytest.mark.parametrize("parts", [1, 2, 4, 8])
def test_parts_give_the_whole_batch_loss_and_gradient(parts):
  exp, params, xs, ys = tiny_batch()
  loss, grads = microbatch.value_and_grad(exp.loss, params, xs, ys, parts)
  want_loss, want_grads = jax.value_and_grad(exp.loss)(params, xs, ys)
  np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
  for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_the_gradient_of_each_part_counts_once():
  """Against an independent sum: the gradient of part i alone, averaged by hand."""
  exp, params, xs, ys = tiny_batch()
  _, grads = microbatch.value_and_grad(exp.loss, params, xs, ys, 4)
  pieces = [jax.grad(exp.loss)(params, xs[i:i + 2], ys[i:i + 2]) for i in range(0, 8, 2)]
  want = jax.tree.map(lambda *g: sum(g) / 4, *pieces)
  for got, expected in zip(jax.tree.leaves(grads), jax.tree.leaves(want)):
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_parts_that_do_not_divide_the_batch_are_refused():
  exp, params, xs, ys = tiny_batch()
  with pytest.raises(ValueError, match="3 microbatches do not divide a batch of 8"):
    microbatch.value_and_grad(exp.loss, params, xs, ys, 3)


@pytest.mark.parametrize("batch, tokens, group", [
    (256, 32, 1), (256, 32, 4), (64, 32, 1), (128, 32, 1), (96, 40, 3), (7, 1000, 1),
    (8, 8, 1)])
def test_count_is_the_fewest_divisor_whose_tokens_fit(batch, tokens, group):
  parts = microbatch.count(batch, tokens, group)
  assert batch % parts == 0
  fits = lambda p: batch // p * tokens * group <= microbatch.CPU_TOKENS
  assert fits(parts) or parts == batch
  assert not any(fits(p) for p in range(1, parts) if batch % p == 0)


def test_count_at_the_papers_and_the_demos_sizes():
  paper, small = base.get_config(), demo.get_config()
  sizes = lambda c: (c.batch_size, 2 * c.K)
  assert microbatch.count(*sizes(paper)) == 4  # 64 sequences of 32 tokens
  assert microbatch.count(*sizes(paper), group_size=2) == 8
  assert microbatch.count(*sizes(small)) == 1
  assert microbatch.count(128, 32) == 2
  assert microbatch.count(*sizes(paper), platform="gpu") == 1


def test_a_microbatched_training_step_follows_the_whole_batch_step():
  """Three steps through the training loop's own step (shard_map, scan carry types)."""
  config = tiny_config.get_config()
  exp = experiment.build(config)
  mesh = train.make_mesh()
  run = groups.stack([experiment.run_data(config)])
  finals = []
  for parts in (1, 4):
    state = groups.stack([experiment.init_state(exp)])
    step = train.make_multi_step(exp, mesh, 1, microbatches=parts)
    state, sums, _ = step(state, run, jnp.asarray(3, jnp.int32), jnp.zeros((1,)))
    finals.append((state, sums))
  (a, loss_a), (b, loss_b) = finals
  np.testing.assert_allclose(loss_a, loss_b, rtol=1e-6)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def _runs(**fields):
  """Configs of two runs of the tiny config's shapes that may share a group: seed, γ
  and learning rate differ (a group's padding is groups_test's subject)."""
  configs = [tiny_config.get_config() for _ in range(2)]
  for c, (seed, gamma, rate) in zip(configs, [(0, 0.05, 3e-3), (1, 0.2, 1e-3)]):
    c.update(fields)
    c.seed, c.gamma, c.learning_rate = seed, gamma, rate
  return configs


def _steps(exp, configs, mesh, microbatches, num_steps=3):
  """(stacked states, loss sums) after `num_steps` steps of the group `configs` from
  their initial states, through the training loop's own step."""
  states = groups.stack([experiment.init_state(exp, c) for c in configs])
  runs = groups.stack([experiment.run_data(c) for c in configs])
  step = train.make_multi_step(exp, mesh, len(configs), microbatches=microbatches)
  state, sums, _ = step(states, runs, jnp.asarray(num_steps, jnp.int32),
                        jnp.zeros((len(configs),)))
  return jax.device_get((state, sums))


def test_a_group_of_two_runs_takes_microbatched_steps_as_each_run_alone():
  """The vmapped step of a group of 2 (per-run keys, γ and rate), each run's batch cut
  in 4 microbatches, against each run's whole-batch step alone (the program of the
  test above, so compiled once)."""
  configs = _runs()
  exp = experiment.build(configs[0])
  mesh = train.make_mesh()
  group, group_loss = _steps(exp, configs, mesh, 4)
  for i, config in enumerate(configs):
    alone, loss = _steps(exp, [config], mesh, 1)
    np.testing.assert_allclose(group_loss[i], loss[0], rtol=1e-6)
    for x, y in zip(jax.tree.leaves(groups.take(group, i)), jax.tree.leaves(alone)):
      np.testing.assert_allclose(x, y[0], rtol=1e-5, atol=1e-6)
  assert group_loss[0] != group_loss[1]


# What the tests below need of 2 CPU devices, computed in one process (a child with
# 2 devices; this one has 1), saved to $OUT.
# (1) One run of a batch of 1024 sequences of 8 tokens: 512 a device on 2 devices,
# which microbatch.count cuts into 2 parts, as it cuts the demo at batch 256 (128
# sequences of 32 tokens a device) and the paper size: the state and loss sum after 3
# steps on 2 devices, microbatched (the loop's own count) and whole-batch.
# (2) One step of the tiny config on 1 device and on 2: Adam's first moments.
_ON_TWO_DEVICES = """
import os
import jax, numpy as np
from jax.sharding import Mesh
from temporal_icl.core import experiment
from temporal_icl.tests import microbatch_test
from temporal_icl.training import microbatch
from temporal_icl.training import train
config = microbatch_test._runs(batch_size=1024)[:1]
exp = experiment.build(config[0])
mesh = train.make_mesh()
assert mesh.size == 2, mesh
saved = {"parts": np.asarray(microbatch.count(1024 // 2, 2 * config[0].K))}
for name, parts in (("micro", None), ("whole", 1)):
  state, saved[name + "/loss"] = microbatch_test._steps(exp, config, mesh, parts)
  saved.update({f"{name}/{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(state))})
config = microbatch_test._runs()[:1]
exp = experiment.build(config[0])
for name, devices in (("one", jax.devices()[:1]), ("two", jax.devices())):
  mesh = Mesh(np.asarray(devices), ("batch",))
  state, _ = microbatch_test._steps(exp, config, mesh, 1, num_steps=1)
  saved.update({f"{name}/{i}": np.asarray(x)
                for i, x in enumerate(jax.tree.leaves(state.opt_state[0].mu))})
np.savez(os.environ["OUT"], **saved)
"""


@pytest.fixture(scope="module")
def on_two_devices(tmp_path_factory):
  """The arrays _ON_TWO_DEVICES saved."""
  out = tmp_path_factory.mktemp("two_devices") / "saved.npz"
  done = subprocess.run([sys.executable, "-c", _ON_TWO_DEVICES], cwd=binary.REPO,
                        env=binary.cpu_env(2, OUT=str(out)), capture_output=True,
                        text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  with np.load(out) as f:
    return dict(f)


def test_microbatches_on_two_devices_take_the_whole_batch_steps(on_two_devices):
  """Each of 2 devices cuts its half of the batch into microbatches (a scan inside
  shard_map, whose carry must keep the device-varying type, then pmean): the path
  of the demo at batch 256 and of the paper size on 2 CPU devices.  Every leaf of
  the state against the whole batch on the same devices."""
  assert microbatch.count(256 // 2, 2 * demo.get_config().K) == 2
  assert microbatch.count(base.get_config().batch_size // 2, 2 * base.get_config().K) == 2
  saved = on_two_devices
  assert int(saved["parts"]) == 2
  leaves = sorted(k.split("/")[1] for k in saved
                  if k.startswith("micro/") and k != "micro/loss")
  assert len(leaves) > 10 and leaves == sorted(k.split("/")[1] for k in saved
                                               if k.startswith("whole/") and k != "whole/loss")
  np.testing.assert_allclose(saved["micro/loss"], saved["whole/loss"], rtol=1e-6)
  for i in leaves:
    np.testing.assert_allclose(saved[f"micro/{i}"], saved[f"whole/{i}"], rtol=1e-5,
                               atol=1e-6, err_msg=f"leaf {i}")


def test_the_gradient_does_not_depend_on_the_device_count(on_two_devices):
  """Adam's first moment after one step is the batch's mean gradient, on 1 device or
  2.  Caught: differentiating the replicated parameters inside shard_map, whose
  gradient is already summed over the devices, so pmean kept 2x the mean (Adam's
  update mu/sqrt(nu) hid it from the parameters and the metrics)."""
  saved = on_two_devices
  names = sorted(k.split("/")[1] for k in saved if k.startswith("one/"))
  assert names
  for i in names:
    np.testing.assert_allclose(saved[f"two/{i}"], saved[f"one/{i}"], rtol=1e-5, atol=1e-7,
                               err_msg=f"mu leaf {i}")
