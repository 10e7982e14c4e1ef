"""Prediction heads: variance floors, likelihoods against scipy, sampling moments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special
from scipy import stats

from temporal_icl.core import heads

NOISE_VAR = 0.25


def _raw(P, shape=(4, 5), scale=3.0, seed=0):
  return scale * jax.random.normal(jax.random.PRNGKey(seed), (*shape, P))


def test_gaussian_variance_is_floored_at_noise_variance():
  head = heads.get_head("gaussian", NOISE_VAR)
  raw = jnp.stack([jnp.zeros(5), jnp.array([-1e4, -50.0, 0.0, 50.0, 1e4])], -1)
  _, var = head.params(raw)
  assert float(var[0]) == pytest.approx(NOISE_VAR, abs=1e-5)
  # σ² = noise_var + softplus(raw) + eps exactly, with no overflow at ±1e4:
  # NOISE_VAR + eps, + 2e-22, + log 2, + 50, + 1e4.
  softplus = np.logaddexp(0.0, np.asarray(raw[:, 1], np.float64))
  np.testing.assert_allclose(var, NOISE_VAR + softplus + heads.VARIANCE_EPS, rtol=1e-6)
  assert np.all(var >= NOISE_VAR)


def test_mixture_variances_are_floored_only_when_asked():
  raw = _raw(9, scale=100.0)
  _, _, var = heads.get_head("mog", NOISE_VAR, 3).params(raw)  # the paper's: 1e-6 floor
  assert np.all(var >= heads.VARIANCE_EPS) and np.min(var) < 1e-3
  _, _, floored = heads.mog.MixtureHead(NOISE_VAR, 3, floor_at_noise=True).params(raw)
  np.testing.assert_allclose(floored, var + NOISE_VAR, rtol=1e-6)
  assert np.all(floored >= NOISE_VAR)


def test_mixture_weights_sum_to_one():
  log_w, _, _ = heads.get_head("mog", NOISE_VAR, 4).params(_raw(12))
  np.testing.assert_allclose(jnp.exp(log_w).sum(-1), 1.0, rtol=1e-6)


def test_gaussian_nll_equals_scipy():
  head = heads.get_head("gaussian", NOISE_VAR)
  raw, y = _raw(2), jax.random.normal(jax.random.PRNGKey(1), (4, 5))
  mean, var = map(np.float64, head.params(raw))
  expected = -stats.norm.logpdf(np.float64(y), mean, np.sqrt(var))
  np.testing.assert_allclose(head.nll(raw, y), expected, rtol=1e-5, atol=1e-5)


def test_mixture_nll_equals_scipy():
  head = heads.get_head("mog", NOISE_VAR, 3)
  raw, y = _raw(9), jax.random.normal(jax.random.PRNGKey(1), (4, 5))
  log_w, means, var = map(np.float64, head.params(raw))
  expected = -special.logsumexp(
      log_w + stats.norm.logpdf(np.float64(y)[..., None], means, np.sqrt(var)), axis=-1)
  np.testing.assert_allclose(head.nll(raw, y), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["gaussian", "mog"])
def test_samples_match_predictive_mean_and_variance(name):
  head = heads.get_head(name, NOISE_VAR, 3)
  raw = _raw(head.num_outputs, shape=(1,), scale=1.5)
  n = 200_000
  samples = head.sample(jax.random.PRNGKey(2), jnp.broadcast_to(raw, (n, raw.shape[-1])))
  if name == "gaussian":
    mean, var = map(float, head.params(raw[0]))
  else:
    log_w, means, variances = map(np.float64, head.params(raw[0]))
    w = np.exp(log_w)
    mean = float((w * means).sum())
    var = float((w * (variances + means**2)).sum() - mean**2)
  np.testing.assert_allclose(float(head.mean(raw[0])), mean, rtol=1e-5)
  # SE of the sample mean √(var/n); of the variance ≈ var·√(2/n) (Gaussian) —
  # 5 SE, with a factor 2 on the variance for the heavier-tailed mixture.
  assert abs(float(samples.mean()) - mean) < 5 * np.sqrt(var / n)
  assert abs(float(samples.var()) - var) < 10 * var * np.sqrt(2 / n)


def test_loss_is_mse_for_point_and_mean_nll_otherwise():
  y = jax.random.normal(jax.random.PRNGKey(1), (4, 5))
  point = heads.get_head("point", NOISE_VAR)
  raw = _raw(1)
  np.testing.assert_allclose(heads.loss(point, raw, y), np.mean((raw[..., 0] - y) ** 2),
                             rtol=1e-6)
  gauss = heads.get_head("gaussian", NOISE_VAR)
  raw = _raw(2)
  np.testing.assert_allclose(heads.loss(gauss, raw, y), gauss.nll(raw, y).mean(), rtol=1e-6)


def test_point_head_refuses_likelihood_and_sampling():
  point = heads.get_head("point", NOISE_VAR)
  with pytest.raises(ValueError, match="probabilistic head"):
    point.sample(jax.random.PRNGKey(0), _raw(1))
  with pytest.raises(ValueError, match="no likelihood"):
    point.nll(_raw(1), jnp.zeros((4, 5)))


def test_unknown_head_lists_valid_names():
  with pytest.raises(ValueError, match="gaussian, mog, point"):
    heads.get_head("cauchy", NOISE_VAR)
