"""Tests for temporal_icl.measurements.methods.sgld: the SGLD local learning coefficient estimator.

Models (loss = half mean squared error, x ~ N(0, I), n = 10 000 examples):
  regular:  y = w·x + noise, w ∈ R^d, w* = least squares      λ = d/2
  singular: y = a·b·x + noise, true ab = 0, w* = (0, 0)         λ = 1/2
  quadratic: L = ½ (w − w*)ᵀH(w − w*) + const, exact gradients: SGLD is a Gaussian
    AR(1) process whose λ̂ distribution is computed exactly (_exact_sgld_moments)

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

from temporal_icl.measurements.methods import sgld as sgld_lib

N = 10_000
NOISE_STD = 0.1
SGLD = sgld_lib.SGLDConfig(epsilon=2e-3, localization=1.0, num_chains=8, num_burnin_steps=200,
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
  return sgld_lib.make_llc_estimator(_linear_loss, SGLD)


@functools.lru_cache(maxsize=None)
def _regular_result(d):
  dataset, _, w_star = _linear_problem(d, seed=d)
  return _linear_estimator()({"linear": {"w": w_star}}, dataset, jax.random.PRNGKey(100 + d))


@pytest.mark.parametrize("d", [2, 8])
def test_regular_model_recovers_half_dimension(d):
  result = _regular_result(d)
  assert abs(float(result.mean) - d / 2) < 0.15 * d / 2, (float(result.mean), d / 2)
  assert 0 < float(result.std) < 0.2 * d / 2


def _exact_sgld_moments(hessian, nbeta, gamma, epsilon, burnin, draws):
  """Exact moments of SGLD on L(w) = L(w*) + ½ eᵀHe (e = w − w*) with exact gradients.

  Then e_{t+1} = A e_t + √ε ξ_t with A = (1 − εγ/2) I − (εnβ/2) H and e_0 = 0, a
  Gaussian AR(1) process with Cov(e_t) = Σ_t, Σ_{t+1} = A Σ_t A + ε I and
  Cov(e_s, e_t) = A^{s−t} Σ_t for s >= t.  The excess loss q_t = ½ e_tᵀHe_t has mean
  ½ tr(HΣ_t) and Cov(q_s, q_t) = ½ tr(H C_st H C_stᵀ).  Computed here in float64
  with no SGLD code, this is the estimator's exact distribution for such a loss,
  step-size (discretization) bias, burn-in and finite chain length included.

  Returns:
    (mean and standard deviation of the excess loss q_t at each of the
     burnin + draws steps [B + T] each, E[λ̂ of one chain] = nβ · mean over the
     draws of the mean q_t, standard deviation of one chain's λ̂).
  """
  d = hessian.shape[0]
  a = (1 - epsilon * gamma / 2) * np.eye(d) - epsilon * nbeta / 2 * hessian
  sigmas = [np.zeros((d, d))]
  for _ in range(burnin + draws - 1):
    sigmas.append(a @ sigmas[-1] @ a.T + epsilon * np.eye(d))
  mean_q = np.array([0.5 * np.trace(hessian @ s) for s in sigmas])
  sd_q = np.sqrt([0.5 * np.trace(hessian @ s @ hessian @ s) for s in sigmas])
  cov = np.zeros((draws, draws))
  for i in range(draws):
    for j in range(i + 1):  # s = burnin + i >= t = burnin + j
      c_st = np.linalg.matrix_power(a, i - j) @ sigmas[burnin + j]
      cov[i, j] = cov[j, i] = 0.5 * np.trace(hessian @ c_st @ hessian @ c_st.T)
  return mean_q, sd_q, nbeta * mean_q[burnin:].mean(), nbeta * np.sqrt(cov.sum()) / draws


# A quadratic loss of a two-leaf pytree (w = [a₀, a₁, b]) whose minibatch value
# depends on the batch only through a constant: gradients are exact and every
# minibatch loss is L_n, so SGLD is exactly the process of _exact_sgld_moments.
_QUADRATIC_H = np.array([[1.0, 0.3, 0.0], [0.3, 0.6, 0.1], [0.0, 0.1, 0.25]])
_QUADRATIC_W_STAR = np.array([0.5, -1.0, 2.0])
_QUADRATIC_FLOOR = 0.25


def _quadratic_loss(params, batch):
  e = jnp.concatenate([params["a"], params["b"][None]]) - _QUADRATIC_W_STAR
  return 0.5 * e @ jnp.asarray(_QUADRATIC_H, jnp.float32) @ e + jnp.mean(batch["c"])


def test_quadratic_loss_matches_the_exact_sgld_process():
  """λ̂ against its exact distribution, computed independently of the estimator.

  ε is large on purpose: the exact value (≈ 1.72) is 29% above the continuous-time
  posterior's ½ tr(nβH (nβH + γI)⁻¹) ≈ 1.34, so a wrong step (ε or ε/2 on the drift
  or the noise), burn-in, or averaging fails.  n = 100, m = 16: 6 batches per epoch,
  so the 50 steps end in a partial epoch.  Over 8 seeds: the mean within 1.5
  standard errors, the sd over chains 0.996..1.036 of the exact one, every step's
  mean within 2.7 standard errors.
  """
  nbeta, gamma, epsilon, burnin, draws, chains = 40.0, 2.0, 0.03, 5, 45, 4000
  sgld = sgld_lib.SGLDConfig(epsilon=epsilon, localization=gamma, nbeta=nbeta,
                        num_chains=chains, num_burnin_steps=burnin, num_draws=draws,
                        batch_size=16)
  params_star = {"a": jnp.asarray(_QUADRATIC_W_STAR[:2], jnp.float32),
                 "b": jnp.asarray(_QUADRATIC_W_STAR[2], jnp.float32)}
  dataset = {"c": jnp.full((100,), _QUADRATIC_FLOOR, jnp.float32)}
  result = jax.device_get(sgld_lib.make_llc_estimator(_quadratic_loss, sgld)(
      params_star, dataset, jax.random.PRNGKey(0)))
  mean_q, sd_q, lam, sd = _exact_sgld_moments(_QUADRATIC_H, nbeta, gamma, epsilon, burnin,
                                              draws)
  assert lam == pytest.approx(1.7235, abs=1e-4) and sd == pytest.approx(0.3311, abs=1e-4)

  assert float(result.init_loss) == pytest.approx(_QUADRATIC_FLOOR, abs=1e-7)
  # Every draw is above L_n(w*) = the floor (the excess loss is a positive quadratic).
  assert float(result.loss_below_init_fraction) == 0.0
  excess = np.asarray(result.loss_traces, np.float64) - _QUADRATIC_FLOOR  # [C, B + T]
  # Step 0 is at w* in every chain; then the mean over chains follows ½ tr(HΣ_t),
  # each step within 5 standard errors.
  np.testing.assert_allclose(excess[:, 0], 0.0, atol=1e-7)
  z = (excess.mean(0) - mean_q)[1:] / (sd_q[1:] / np.sqrt(chains))
  assert np.all(np.abs(z) < 5), z
  # λ̂ = mean over chains: within 4 standard errors (0.021, 1.2% of λ) of the exact
  # value; the spread over chains within 8% of the exact sd.
  assert abs(float(result.mean) - lam) < 4 * sd / np.sqrt(chains), (float(result.mean), lam)
  assert abs(float(result.std) / sd - 1) < 0.08, (float(result.std), sd)


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
  result = sgld_lib.make_llc_estimator(_product_loss, SGLD)(params_star, dataset,
                                                            jax.random.PRNGKey(3))
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
  # Every chain's own estimate is near λ = 1 (their spread is ≈ 14% of λ).
  assert np.all(np.abs(np.asarray(result.per_chain) - 1.0) < 0.5), result.per_chain
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
  sgld = sgld_lib.SGLDConfig(epsilon=1e-3, localization=1.0, num_chains=3, num_burnin_steps=5,
                        num_draws=45, batch_size=64)  # 15 batches per epoch.
  estimate = sgld_lib.make_llc_estimator(_linear_loss, sgld)
  first = estimate(params, dataset, jax.random.PRNGKey(0))
  again = estimate(params, dataset, jax.random.PRNGKey(0))
  other = estimate(params, dataset, jax.random.PRNGKey(1))
  assert first.loss_traces.shape == (3, 5 + 45)
  np.testing.assert_array_equal(first.loss_traces, again.loss_traces)
  assert not np.allclose(first.loss_traces, other.loss_traces)
  # Chains differ from each other.
  assert not np.allclose(first.loss_traces[0], first.loss_traces[1])
  # Chunked L_n (15 chunks of 64 + 40) equals the whole-dataset loss.
  whole = _linear_loss(params, dataset)
  np.testing.assert_allclose(float(first.init_loss), float(whole), rtol=1e-5)
  np.testing.assert_allclose(float(sgld_lib.full_loss(_linear_loss, params, dataset, 1000)),
                             float(whole), rtol=1e-5)
  # per_chain is nβ · (post-burn-in mean − L_n(w*)).
  expected = sgld.effective_nbeta * (np.mean(first.loss_traces[:, 5:], axis=1) - first.init_loss)
  np.testing.assert_allclose(first.per_chain, expected, rtol=1e-4, atol=1e-5, equal_nan=False)
  # And its value: the minibatch gradient noise is negligible next to √ε ξ here, so
  # SGLD is the exact process of _exact_sgld_moments for H = XᵀX / n (λ ≈ 0.48, far
  # from stationary at 50 steps); 5 standard errors of the mean of 3 chains (the
  # minibatch loss noise, not counted, widens the spread slightly).
  x = np.asarray(dataset["x"], np.float64)
  _, _, lam, sd = _exact_sgld_moments(x.T @ x / len(x), sgld.effective_nbeta, 1.0, 1e-3, 5, 45)
  assert abs(float(first.mean) - lam) < 5 * sd / np.sqrt(3), (float(first.mean), lam)


def test_default_nbeta_and_from_config():
  assert sgld_lib.SGLDConfig(batch_size=256).effective_nbeta == pytest.approx(256 / np.log(256))
  assert sgld_lib.SGLDConfig(nbeta=10.0).effective_nbeta == 10.0
  cfg = ml_collections.ConfigDict()
  cfg.llc = ml_collections.ConfigDict(dict(epsilon=3e-4, localization=10.0, num_chains=2,
                                           num_draws=50, num_burnin_steps=10, batch_size=32))
  sgld = sgld_lib.SGLDConfig.from_config(cfg.llc)
  assert sgld == sgld_lib.SGLDConfig(epsilon=3e-4, localization=10.0, nbeta=None, num_chains=2,
                                num_draws=50, num_burnin_steps=10, batch_size=32)
  with pytest.raises(ValueError, match="unknown fields"):
    sgld_lib.SGLDConfig.from_config(ml_collections.ConfigDict(dict(epsilom=1e-3)))


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
    sgld_lib.SGLDConfig(**kwargs)


def test_burn_in_steps_come_before_the_draws():
  """devinterp's semantics: B burn-in steps, then T draws, all B + T steps traced."""
  dataset, _, w_star = _linear_problem(3, seed=5)
  params = {"linear": {"w": w_star}}
  key = jax.random.PRNGKey(3)
  common = dict(epsilon=1e-3, localization=1.0, num_chains=2, batch_size=64)
  burned = sgld_lib.make_llc_estimator(_linear_loss, sgld_lib.SGLDConfig(
      num_burnin_steps=7, num_draws=13, **common))(params, dataset, key)
  plain = sgld_lib.make_llc_estimator(_linear_loss, sgld_lib.SGLDConfig(
      num_burnin_steps=0, num_draws=20, **common))(params, dataset, key)
  assert burned.loss_traces.shape == (2, 20)
  np.testing.assert_array_equal(burned.loss_traces, plain.loss_traces)  # the same chains
  expected = burned.init_loss + np.mean(plain.loss_traces[:, 7:], axis=1) - plain.init_loss
  np.testing.assert_allclose(burned.per_chain / sgld_lib.SGLDConfig(**common).effective_nbeta,
                             expected - burned.init_loss, rtol=1e-5, atol=1e-7)


def test_gamma_zero_and_batch_of_one_with_explicit_nbeta_are_valid():
  """The rules config validation now takes from SGLDConfig (they used to disagree)."""
  assert sgld_lib.SGLDConfig.problems_of(dict(localization=0.0)) == []
  assert sgld_lib.SGLDConfig.problems_of(dict(batch_size=1, nbeta=5.0)) == []
  from configs import base  # pylint: disable=g-import-not-at-top
  from temporal_icl.training import validation  # pylint: disable=g-import-not-at-top
  c = base.get_config()
  c.llc_steps = "log:4"
  c.llc.localization, c.llc.batch_size, c.llc.nbeta = 0.0, 1, 5.0
  assert validation.find_problems(c) == []
  c.llc.nbeta = None
  assert validation.find_problems(c) == [
      "config.llc.batch_size=1 cannot set nβ = m / log m (log 1 = 0); use batch_size >= 2 "
      "or give llc.nbeta."]


def test_bad_dataset_raises():
  estimate = sgld_lib.make_llc_estimator(_linear_loss,
                                         sgld_lib.SGLDConfig(batch_size=64, num_draws=2))
  params = {"linear": {"w": jnp.zeros(2)}}
  with pytest.raises(ValueError, match="exceeds the dataset size"):
    estimate(params, {"x": jnp.zeros((10, 2)), "y": jnp.zeros(10)}, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="disagree"):
    estimate(params, {"x": jnp.zeros((100, 2)), "y": jnp.zeros(99)}, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="scalar"):
    estimate(params, {"x": jnp.zeros((100, 2)), "y": jnp.zeros(())}, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="SGLDConfig"):
    sgld_lib.make_llc_estimator(_linear_loss, dict(epsilon=1e-3))
