"""Tests for temporal_icl.llc: the SGLD local learning coefficient estimator.

Models (loss = half mean squared error, x ~ N(0, I), n = 10 000 examples):
  regular:  y = w·x + noise, w ∈ R^d, w* = least squares      λ = d/2
  singular: y = a·b·x + noise, true ab = 0, w* = (0, 0)         λ = 1/2

SGLD settings (SGLD below): m = 256 so nβ = m / log m ≈ 46.2.  The Hessian
of the regular loss is ≈ I, so the exact localized posterior gives
½ d · nβ / (nβ + γ) = 0.979 · d/2 at γ = 1; ε = 2e-3 keeps ε(nβ + γ)/4 ≈ 2.4%
(the SGLD discretization inflates the posterior variance by about that), and
mixes in ~20 steps, so 8 chains × 1800 kept draws give a spread of ~2% of d/2
over seeds (measured over 8 seeds: d = 2: 0.95..1.03, d = 8: 3.90..4.10).
Noise std 0.1 keeps minibatch-loss fluctuations at w* small next to the
posterior's loss increase, so well-resolved chains rarely dip below L_n(w*).
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from temporal_icl import llc

N = 10_000
NOISE_STD = 0.1
SGLD = llc.SGLDConfig(epsilon=2e-3, localization=1.0, num_chains=8, num_burnin_steps=200,
                      num_draws=1800, batch_size=256)


def _linear_loss(params, batch):
  pred = batch["x"] @ params["linear"]["w"]
  return 0.5 * jnp.mean(jnp.square(batch["y"] - pred))


def _product_loss(params, batch):
  pred = params["a"] * params["b"] * batch["x"][:, 0]
  return 0.5 * jnp.mean(jnp.square(batch["y"] - pred))


def _linear_problem(d, seed):
  """Realizable linear data.  Returns (dataset, w_true [D], w_lstsq [D])."""
  kx, kw, ke = jax.random.split(jax.random.PRNGKey(seed), 3)
  x = jax.random.normal(kx, (N, d))
  w_true = jax.random.normal(kw, (d,))
  y = x @ w_true + NOISE_STD * jax.random.normal(ke, (N,))
  w_star = jnp.linalg.lstsq(x, y)[0]
  return {"x": x, "y": y}, w_true, w_star


@functools.lru_cache(maxsize=None)
def _linear_estimator():
  return llc.make_llc_estimator(_linear_loss, SGLD)


@functools.lru_cache(maxsize=None)
def _regular_result(d):
  dataset, _, w_star = _linear_problem(d, seed=d)
  return _linear_estimator()({"linear": {"w": w_star}}, dataset, jax.random.PRNGKey(100 + d))


@pytest.mark.parametrize("d", [2, 8])
def test_regular_model_recovers_half_dimension(d):
  result = _regular_result(d)
  assert abs(float(result.mean) - d / 2) < 0.15 * d / 2, (float(result.mean), d / 2)
  np.testing.assert_allclose(float(result.mean), float(jnp.mean(result.per_chain)), rtol=1e-6)
  assert 0 < float(result.std) < 0.2 * d / 2


def _product_posterior_value(dataset, nbeta, gamma):
  """Exact nβ·(E_w[L_n(w)] − L_n(0)) for the product model, by quadrature.

  L_n(a, b) − L_n(0) = −ab·mean(xy) + ½(ab)²·mean(x²) exactly, so this is the
  estimator's target without SGLD or minibatch error (its nβ → ∞ limit is 1/2;
  at nβ ≈ 46 the slowly-converging singular correction makes it ≈ 0.32).
  """
  x = np.asarray(dataset["x"][:, 0], np.float64)
  y = np.asarray(dataset["y"], np.float64)
  grid = np.linspace(-12.0, 12.0, 2401)
  a, b = np.meshgrid(grid, grid)
  ab = a * b
  energy = nbeta * (-ab * np.mean(x * y) + 0.5 * ab**2 * np.mean(x * x))
  log_weight = -energy - 0.5 * gamma * (a**2 + b**2)
  weight = np.exp(log_weight - log_weight.max())
  return float(np.sum(energy * weight) / np.sum(weight))


def test_singular_model_has_lower_coefficient_than_regular():
  kx, ke = jax.random.split(jax.random.PRNGKey(7))
  dataset = {"x": jax.random.normal(kx, (N, 1)), "y": NOISE_STD * jax.random.normal(ke, (N,))}
  params_star = {"a": jnp.zeros(()), "b": jnp.zeros(())}
  result = llc.make_llc_estimator(_product_loss, SGLD)(params_star, dataset, jax.random.PRNGKey(3))
  singular = float(result.mean)
  exact = _product_posterior_value(dataset, SGLD.effective_nbeta, SGLD.localization)
  assert singular < 0.8, singular
  # Over 8 seeds the estimate ranged 0.27..0.35 around the exact value ≈ 0.32.
  assert abs(singular - exact) < 0.3 * exact, (singular, exact)
  # The same SGLD settings on a regular model with 2 parameters: λ = 1.
  regular = float(_regular_result(2).mean)
  assert regular > 0.85, regular
  assert regular - singular > 0.4, (regular, singular)


def test_result_shapes_and_failure_signal():
  result = _regular_result(2)
  C, B, T = SGLD.num_chains, SGLD.num_burnin_steps, SGLD.num_draws
  assert result.per_chain.shape == (C,)
  assert result.loss_traces.shape == (C, B + T)
  for name in ("mean", "std", "init_loss", "loss_below_init_fraction"):
    assert getattr(result, name).shape == (), name
  assert np.all(np.isfinite(result.loss_traces))
  # Well-resolved minimum: chains stay above L_n(w*).
  assert float(result.loss_below_init_fraction) < 0.05

  # w* one unit away from the minimum in every coordinate: chains descend.
  dataset, w_true, w_star = _linear_problem(2, seed=2)
  off = _linear_estimator()({"linear": {"w": w_true + 1.0}}, dataset, jax.random.PRNGKey(5))
  assert float(off.loss_below_init_fraction) > 0.9
  assert float(off.mean) < 0
  # init_loss is L_n(w*) over the full dataset.
  np.testing.assert_allclose(float(result.init_loss),
                             float(_linear_loss({"linear": {"w": w_star}}, dataset)), rtol=1e-5)


def test_partial_epochs_determinism_and_chunked_loss():
  """n not a multiple of m; draws = 3 full epochs + a partial one."""
  dataset, _, w_star = _linear_problem(3, seed=11)
  dataset = jax.tree.map(lambda leaf: leaf[:1000], dataset)
  params = {"linear": {"w": w_star}}
  sgld = llc.SGLDConfig(epsilon=1e-3, localization=1.0, num_chains=3, num_burnin_steps=5,
                        num_draws=45, batch_size=64)  # 15 batches per epoch.
  estimate = llc.make_llc_estimator(_linear_loss, sgld)
  first = estimate(params, dataset, jax.random.PRNGKey(0))
  again = estimate(params, dataset, jax.random.PRNGKey(0))
  other = estimate(params, dataset, jax.random.PRNGKey(1))
  assert first.loss_traces.shape == (3, 5 + 45)
  np.testing.assert_array_equal(first.loss_traces, again.loss_traces)
  assert not np.allclose(first.loss_traces, other.loss_traces)
  # Chains differ from each other, and every draw is a finite loss.
  assert not np.allclose(first.loss_traces[0], first.loss_traces[1])
  assert np.all(np.isfinite(first.loss_traces))
  # Chunked L_n (15 chunks of 64 + 40) equals the whole-dataset loss.
  whole = _linear_loss(params, dataset)
  np.testing.assert_allclose(float(first.init_loss), float(whole), rtol=1e-5)
  np.testing.assert_allclose(float(llc.full_loss(_linear_loss, params, dataset, 1000)),
                             float(whole), rtol=1e-5)
  # per_chain is nβ · (post-burn-in mean − L_n(w*)).
  expected = sgld.effective_nbeta * (np.mean(first.loss_traces[:, 5:], axis=1) - first.init_loss)
  np.testing.assert_allclose(first.per_chain, expected, rtol=1e-4, atol=1e-5)


def test_default_nbeta_and_from_config():
  assert llc.SGLDConfig(batch_size=256).effective_nbeta == pytest.approx(256 / np.log(256))
  assert llc.SGLDConfig(nbeta=10.0).effective_nbeta == 10.0
  cfg = ml_collections.ConfigDict()
  cfg.llc = ml_collections.ConfigDict(dict(epsilon=3e-4, localization=10.0, num_chains=2,
                                           num_draws=50, num_burnin_steps=10, batch_size=32))
  sgld = llc.SGLDConfig.from_config(cfg.llc)
  assert sgld == llc.SGLDConfig(epsilon=3e-4, localization=10.0, nbeta=None, num_chains=2,
                                num_draws=50, num_burnin_steps=10, batch_size=32)
  with pytest.raises(ValueError, match="unknown fields"):
    llc.SGLDConfig.from_config(ml_collections.ConfigDict(dict(epsilom=1e-3)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(epsilon=0.0), "epsilon"),
    (dict(epsilon=-1e-3), "epsilon"),
    (dict(localization=-1.0), "localization"),
    (dict(nbeta=0.0), "nbeta"),
    (dict(num_chains=0), "num_chains"),
    (dict(num_draws=0), "num_draws"),
    (dict(num_burnin_steps=-1), "num_burnin_steps"),
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=1), "batch_size >= 2"),
    (dict(batch_size=1, num_chains=0), "num_chains=0 must be >= 1. llc.batch_size=1"),
])
def test_bad_config_raises(kwargs, match):
  with pytest.raises(ValueError, match=match):
    llc.SGLDConfig(**kwargs)


def test_burn_in_steps_come_before_the_draws():
  """devinterp's semantics: B burn-in steps, then T draws, all B + T steps traced."""
  dataset, _, w_star = _linear_problem(3, seed=5)
  params = {"linear": {"w": w_star}}
  key = jax.random.PRNGKey(3)
  common = dict(epsilon=1e-3, localization=1.0, num_chains=2, batch_size=64)
  burned = llc.make_llc_estimator(_linear_loss, llc.SGLDConfig(
      num_burnin_steps=7, num_draws=13, **common))(params, dataset, key)
  plain = llc.make_llc_estimator(_linear_loss, llc.SGLDConfig(
      num_burnin_steps=0, num_draws=20, **common))(params, dataset, key)
  assert burned.loss_traces.shape == (2, 20)
  np.testing.assert_array_equal(burned.loss_traces, plain.loss_traces)  # the same chains
  expected = burned.init_loss + np.mean(plain.loss_traces[:, 7:], axis=1) - plain.init_loss
  np.testing.assert_allclose(burned.per_chain / llc.SGLDConfig(**common).effective_nbeta,
                             expected - burned.init_loss, rtol=1e-5, atol=1e-7)


def test_gamma_zero_and_batch_of_one_with_explicit_nbeta_are_valid():
  """The rules config validation now takes from SGLDConfig (they used to disagree)."""
  assert llc.SGLDConfig.problems_of(dict(localization=0.0)) == []
  assert llc.SGLDConfig.problems_of(dict(batch_size=1, nbeta=5.0)) == []
  from configs import base  # pylint: disable=g-import-not-at-top
  from temporal_icl import validation  # pylint: disable=g-import-not-at-top
  c = base.get_config()
  c.llc_steps = "log:4"
  c.llc.localization, c.llc.batch_size, c.llc.nbeta = 0.0, 1, 5.0
  assert validation.find_problems(c) == []
  c.llc.nbeta = None
  assert validation.find_problems(c) == [
      "config.llc.batch_size=1 cannot set nβ = m / log m (log 1 = 0); use batch_size >= 2 "
      "or give llc.nbeta."]


def test_bad_dataset_raises():
  estimate = llc.make_llc_estimator(_linear_loss, llc.SGLDConfig(batch_size=64, num_draws=2))
  params = {"linear": {"w": jnp.zeros(2)}}
  with pytest.raises(ValueError, match="exceeds the dataset size"):
    estimate(params, {"x": jnp.zeros((10, 2)), "y": jnp.zeros(10)}, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="disagree"):
    estimate(params, {"x": jnp.zeros((100, 2)), "y": jnp.zeros(99)}, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="scalar"):
    estimate(params, {"x": jnp.zeros((100, 2)), "y": jnp.zeros(())}, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="SGLDConfig"):
    llc.make_llc_estimator(_linear_loss, dict(epsilon=1e-3))
