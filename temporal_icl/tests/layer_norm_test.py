"""layer_norm.LayerNorm against hk.LayerNorm: same parameters, values and gradients."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from temporal_icl.core import layer_norm


def _apply(make, x, seed=0):
  """Parameters (perturbed from their init), output and gradients of sum(sin(LN(x)))."""
  net = hk.without_apply_rng(hk.transform(lambda x: make()(x)))
  params = net.init(jax.random.PRNGKey(seed), x)
  params = jax.tree.map(
      lambda p: p + jax.random.normal(jax.random.PRNGKey(seed + 1), p.shape), params)
  loss = lambda params, x: jnp.sum(jnp.sin(net.apply(params, x)))
  return params, net.apply(params, x), jax.grad(loss, argnums=(0, 1))(params, x)


def _haiku():
  return hk.LayerNorm(axis=-1, create_scale=True, create_offset=True, name="ln")


def _ours():
  return layer_norm.LayerNorm(name="ln")


@pytest.mark.parametrize("shape", [(256, 64), (3, 5, 16)])
def test_values_and_gradients_equal_haikus(shape):
  # Rows far from zero mean and unit variance, so that both terms of the
  # gradient (the mean and the projection on x̂) matter.
  x = 3 * jax.random.normal(jax.random.PRNGKey(7), shape) + 1.5
  p_hk, y_hk, (g_hk, dx_hk) = _apply(_haiku, x)
  p_ours, y_ours, (g_ours, dx_ours) = _apply(_ours, x)
  assert jax.tree.structure(p_hk) == jax.tree.structure(p_ours)
  for a, b in zip(jax.tree.leaves(p_hk), jax.tree.leaves(p_ours)):
    np.testing.assert_array_equal(a, b)  # same names, shapes and initial values
  np.testing.assert_allclose(y_ours, y_hk, rtol=1e-5, atol=1e-5)
  for a, b in zip(jax.tree.leaves(g_hk), jax.tree.leaves(g_ours)):
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(dx_ours, dx_hk, rtol=1e-4, atol=1e-5)


def test_standardize_gradient_matches_finite_differences():
  x = jax.random.normal(jax.random.PRNGKey(3), (4, 6))
  w = jax.random.normal(jax.random.PRNGKey(4), x.shape)
  f = lambda x: jnp.sum(w * layer_norm.standardize(x) ** 3)
  grad = jax.grad(f)(x)
  eps = 1e-2
  for index in [(0, 0), (1, 3), (3, 5)]:
    e = jnp.zeros_like(x).at[index].set(eps)
    numeric = (f(x + e) - f(x - e)) / (2 * eps)
    np.testing.assert_allclose(grad[index], numeric, rtol=2e-2, atol=2e-3)


def test_standardized_rows_have_zero_mean_and_unit_variance():
  x = 5 * jax.random.normal(jax.random.PRNGKey(0), (32, 128)) - 2
  x_hat = layer_norm.standardize(x)
  np.testing.assert_allclose(jnp.mean(x_hat, -1), 0, atol=1e-5)
  np.testing.assert_allclose(jnp.var(x_hat, -1), 1, atol=1e-4)  # ε = 1e-5 against σ² ≈ 25
