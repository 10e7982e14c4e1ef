"""What the Gaussian heads share: the variance floor ε and the log-density."""

import math

import jax.numpy as jnp

VARIANCE_EPS = 1e-6  # added to every predicted variance
_LOG_2PI = math.log(2 * math.pi)


def gaussian_logpdf(y, mean, var):
  """log N(y; mean, var), elementwise."""
  return -0.5 * (_LOG_2PI + jnp.log(var) + jnp.square(y - mean) / var)
