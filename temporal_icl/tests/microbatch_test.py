"""Microbatched gradients: the batch's mean loss and gradient, in cache-sized parts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import base
from configs import demo
from temporal_icl import experiment
from temporal_icl import groups
from temporal_icl import microbatch
from temporal_icl import train
from temporal_icl.tests import tiny_config


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
