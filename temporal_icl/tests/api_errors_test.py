"""The library's public functions refuse bad arguments with one sentence naming them.

Rollouts (prior), baselines, energy distance and its samplers, and the LLC
estimator, called as a researcher would: a wrong shape or type raises
ValueError / TypeError naming the function, the argument, the shape it needs
and the shape it got (not a JAX-internal error about concatenate, broadcasting
or MLIR), and both rollout samplers behave the same on every input.
"""

import gin
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from temporal_icl.core import baselines
from temporal_icl.measurements.methods import energy
from temporal_icl.measurements.methods import predictive
from temporal_icl.measurements.methods import sgld
from temporal_icl.tests import tiny_config

SAMPLERS = [predictive.rollout, predictive.rollout_full_recompute]
KEY = jax.random.PRNGKey(0)


@pytest.fixture(scope="module")
def run():
  """(config, params, net) of a tiny Gaussian-head model with K = 4, D = 2."""
  gin.clear_config()
  gin.parse_config_files_and_bindings(["configs/model/paper.gin"], [])
  try:
    c = tiny_config.get_config()
    c.head = "gaussian"
    net = predictive.network(c)
    params = jax.jit(net.model.init)(KEY, jnp.zeros((1, c.K, c.D)), jnp.zeros((1, c.K)))
    return c, params, net
  finally:
    gin.clear_config()


def _name(sampler):
  return f"predictive.{sampler.__name__}"


# Rollouts: the prompt.

@pytest.mark.parametrize("sampler", SAMPLERS)
def test_prompt_ys_with_a_trailing_axis_is_refused(run, sampler):
  # S == P: rollout_full_recompute used to broadcast ys [P, 1] over the rollouts.
  _, params, net = run
  prompt = (jnp.ones((2, 2)), jnp.ones((2, 1)))
  with pytest.raises(ValueError, match=rf"^{_name(sampler)}: prompt ys must have shape "
                     r"\[P\] = \(2,\) to match prompt xs \[P, D\] = \(2, 2\); got \(2, 1\)\.$"):
    sampler(params, net, KEY, 2, 1, prompt)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_prompt_of_the_wrong_dimension_is_refused(run, sampler):
  _, params, net = run
  with pytest.raises(ValueError, match=r"prompt xs must have shape \[P, D\] = \(P, 2\) to "
                     r"match config.D = 2; got \(2, 3\)"):
    sampler(params, net, KEY, 2, 1, (jnp.ones((2, 3)), jnp.ones(2)))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_prompt_lengths_must_agree(run, sampler):
  _, params, net = run
  with pytest.raises(ValueError, match=r"prompt ys must have shape \[P\] = \(2,\) .*; got "
                     r"\(3,\)"):
    sampler(params, net, KEY, 2, 1, (jnp.ones((2, 2)), jnp.ones(3)))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_one_dimensional_prompt_is_refused(run, sampler):
  _, params, net = run
  with pytest.raises(ValueError, match=r"prompt xs must have shape \[P, D\] .*; got \(2,\)"):
    sampler(params, net, KEY, 2, 1, (jnp.ones(2), jnp.ones(1)))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_prompt_must_be_a_pair(run, sampler):
  _, params, net = run
  with pytest.raises(TypeError, match=r"prompt must be a pair \(xs \[P, D\], ys \[P\]\) or "
                     r"None; got a float32 array of shape \(2, 2\)"):
    sampler(params, net, KEY, 2, 1, jnp.ones((2, 2)))


def test_python_lists_are_arrays_in_both_samplers(run):
  _, params, net = run
  lists = ([[0.5, -1], [2, 0.3]], [1, -0.4])
  arrays = (jnp.array(lists[0]), jnp.array(lists[1]))

  @jax.jit  # one compile for the three rollouts (op by op takes 3x longer)
  def rollouts(params):
    return (predictive.rollout(params, net, KEY, 2, 2, lists),
            predictive.rollout_full_recompute(params, net, KEY, 2, 2, lists),
            predictive.rollout(params, net, KEY, 2, 2, arrays))

  cached, full, from_arrays = rollouts(params)
  np.testing.assert_array_equal(cached[0], full[0])
  np.testing.assert_allclose(cached[1], full[1], rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(cached[1], from_arrays[1])


# Rollouts: nothing to sample.

@pytest.mark.parametrize("S, L, P", [(3, 0, 4), (3, 0, 0), (0, 2, 1)],
                         ids=["prompt_fills_context", "no_pairs", "no_samples"])
def test_empty_rollouts_are_the_same_empty_arrays_in_both_samplers(run, S, L, P):
  _, params, net = run
  prompt = (jnp.ones((P, 2)), jnp.ones(P)) if P else None
  cached = predictive.rollout(params, net, KEY, S, L, prompt)
  full = predictive.rollout_full_recompute(params, net, KEY, S, L, prompt)
  for xs, ys in (cached, full):
    assert xs.shape == (S, L, 2) and ys.shape == (S, L)
  np.testing.assert_array_equal(cached[0], full[0])


# Rollouts: the other arguments.

@pytest.mark.parametrize("sampler", SAMPLERS)
def test_key_must_be_a_prng_key(run, sampler):
  _, params, net = run
  with pytest.raises(TypeError, match=r"key must be a PRNG key .*; got int 0\.$"):
    sampler(params, net, 0, 2, 1)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_net_must_be_a_network(run, sampler):
  c, params, _ = run
  with pytest.raises(TypeError, match=r"net must be predictive.network\(config\); got ConfigDict"):
    sampler(params, c, KEY, 2, 1)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("S, L, error, match", [
    (2.0, 1, TypeError, r"num_samples must be an int \(a static size\); got float 2.0"),
    (2, -1, ValueError, r"num_pairs must be >= 0; got -1"),
], ids=["float_num_samples", "negative_num_pairs"])
def test_sizes_must_be_ints_at_least_zero(run, sampler, S, L, error, match):
  _, params, net = run
  with pytest.raises(error, match=match):
    sampler(params, net, KEY, S, L)


@pytest.mark.parametrize("args, match", [
    ((4, 5), r"a rollout of 5 pairs after a 0-pair prompt exceeds the model's context of "
             r"K=4 pairs"),
    ((0, 3), r"num_samples must be >= 1; got 0"),
], ids=["num_pairs_past_K", "no_samples"])
def test_prior_sampler_refuses_bad_sizes_when_built(run, args, match):
  with pytest.raises(ValueError, match=match):
    predictive.make_prior_sampler(run[0], *args)  # not called: refused at build time


# Baselines.

def _sequences():
  return jnp.ones((3, 4, 2)), jnp.ones((3, 4)), jnp.array([[1.0, 0.0], [0.0, 1.0]])


@pytest.mark.parametrize("jit", [False, True])
def test_ridge_ys_must_match_xs(jit):
  xs, _, _ = _sequences()
  f = jax.jit(baselines.ridge, static_argnums=2) if jit else baselines.ridge
  with pytest.raises(ValueError, match=r"^baselines.ridge: ys must have shape \[B, K\] = "
                     r"\(3, 4\) to match xs \[B, K, D\] = \(3, 4, 2\); got \(3, 5\)\."):
    f(xs, jnp.ones((3, 5)), 0.25)


def test_ridge_xs_must_be_three_dimensional():
  with pytest.raises(ValueError, match=r"xs must have shape \[B, K, D\]; got \(4, 2\)"):
    baselines.ridge(jnp.ones((4, 2)), jnp.ones(4), 0.25)


def test_dmmse_tasks_must_match_the_dimension():
  xs, ys, _ = _sequences()
  with pytest.raises(ValueError, match=r"tasks must have shape \[M, D\] = \(M, 2\) to match "
                     r"xs \[B, K, D\] = \(3, 4, 2\); got \(5, 3\)"):
    baselines.dmmse(xs, ys, jnp.ones((5, 3)), 0.25)


def test_dmmse_of_the_empty_task_set_is_refused():
  xs, ys, _ = _sequences()
  with pytest.raises(ValueError, match=r"tasks must hold M >= 1 tasks; got \(0, 2\)"):
    baselines.dmmse(xs, ys, jnp.zeros((0, 2)), 0.25)


@pytest.mark.parametrize("which", ["ridge", "dmmse"])
def test_baselines_take_python_lists(which):
  xs, ys, tasks = _sequences()
  xs = xs.at[:, :, 0].set(jnp.arange(4.0))
  f = {"ridge": lambda xs, ys, tasks: baselines.ridge(xs, ys, 0.25),
       "dmmse": lambda xs, ys, tasks: baselines.dmmse(xs, ys, tasks, 0.25)}[which]
  np.testing.assert_array_equal(f(xs.tolist(), ys.tolist(), tasks.tolist()), f(xs, ys, tasks))


def test_a_non_numeric_argument_is_a_type_error():
  with pytest.raises(TypeError, match=r"baselines.ridge: xs must be an array of numbers "
                     r"\(or nested lists of numbers\); got str 'abc'"):
    baselines.ridge("abc", jnp.ones((3, 4)), 0.25)


# Energy distance, OLS and the reference samplers.

def test_energy_distance_names_the_sample_whose_dimension_differs():
  with pytest.raises(ValueError, match=r"^energy.energy_distance: b must have shape \[m, D\] "
                     r"= \(m, 3\) to match a \[n, D\] = \(4, 3\); got \(5, 2\)\."):
    energy.energy_distance(jnp.zeros((4, 3)), jnp.zeros((5, 2)))


def test_ols_fit_ys_must_match_xs():
  with pytest.raises(ValueError, match=r"^predictive.ols_fit: ys must have shape \[S, K\] = "
                     r"\(3, 4\) to match xs \[S, K, D\] = \(3, 4, 2\); got \(3, 5\)\."):
    predictive.ols_fit(jnp.ones((3, 4, 2)), jnp.ones((3, 5)))


@pytest.mark.parametrize("args, error, match", [
    ((KEY, 4.0, 2), TypeError, r"n must be an int \(a static size\); got float 4.0"),
    ((0, 4, 2), TypeError, r"key must be a PRNG key .*; got an int32 array of shape \(\)"),
    ((KEY, 4, 0), ValueError, r"D must be >= 1; got 0"),
], ids=["float_n", "int_key", "zero_D"])
def test_ridge_prior_arguments(args, error, match):
  with pytest.raises(error, match="^predictive.sample_ridge_prior: " + match):
    predictive.sample_ridge_prior(*args)


@pytest.mark.parametrize("tasks, match", [
    (jnp.ones(3), r"tasks must have shape \[M, D\]; got \(3,\)"),
    (jnp.ones((0, 2)), r"tasks must hold M >= 1 tasks; got \(0, 2\)"),
], ids=["one_dimensional", "empty"])
def test_dmmse_prior_tasks(tasks, match):
  with pytest.raises(ValueError, match="^predictive.sample_dmmse_prior: " + match):
    predictive.sample_dmmse_prior(KEY, tasks, 4)


# LLC.

def _loss(params, batch):
  return jnp.mean(jnp.square(batch["x"] @ params - batch["y"]))


def _estimate():
  return sgld.make_llc_estimator(_loss, sgld.SGLDConfig(batch_size=4, num_draws=2,
                                                      num_chains=1))


def test_llc_key_must_be_a_prng_key():
  with pytest.raises(TypeError, match=r"key must be a PRNG key .*; got int 0"):
    _estimate()(jnp.zeros(2), {"x": jnp.ones((8, 2)), "y": jnp.ones(8)}, 0)


@pytest.mark.parametrize("dataset, error, match", [
    ({"x": np.ones((8, 2)).tolist(), "y": np.ones(8).tolist()}, ValueError,
     r"dataset\['x'\]\[0\]\[0\] is a scalar \(a Python float: lists and tuples are pytree "
     r"nodes, so pass arrays\)"),
    ({"x": jnp.ones((8, 2)), "y": jnp.ones(7)}, ValueError,
     r"disagree on the example axis n: dataset\['x'\] has 8, dataset\['y'\] has 7"),
    ({"x": jnp.ones((8, 2)), "y": "abc"}, TypeError,
     r"leaves must be arrays; dataset\['y'\] is str 'abc'"),
], ids=["lists", "sizes", "string"])
def test_llc_dataset_errors_name_the_leaf(dataset, error, match):
  with pytest.raises(error, match=match):
    _estimate()(jnp.zeros(2), dataset, KEY)


def test_llc_loss_fn_must_be_callable():
  with pytest.raises(TypeError, match=r"loss_fn must be a function .*; got NoneType None"):
    sgld.make_llc_estimator(None, sgld.SGLDConfig())


def test_llc_full_loss_chunk_size_must_be_positive():
  with pytest.raises(ValueError, match=r"^sgld.full_loss: chunk_size must be >= 1; got 0\.$"):
    sgld.full_loss(_loss, jnp.zeros(2), {"x": jnp.ones((8, 2)), "y": jnp.ones(8)}, 0)
