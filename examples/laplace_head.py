"""A toy head, written outside the package: a Laplace predictive distribution.

  Laplace(μ, b),  b = softplus(r_b) + ε,  raw outputs [μ | r_b]  (P = 2),

trained by its negative log-likelihood log(2b) + |y − μ| / b.  Heavier-tailed
than the Gaussian head, so it is less swayed by the occasional large residual.
Use it with `config.head = "examples.laplace_head"` (examples/toy_config.py).
README "Extending" walks through it.
"""

import dataclasses

import jax
import jax.numpy as jnp

SCALE_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class LaplaceHead:
  num_outputs: int = 2
  is_probabilistic: bool = True

  def params(self, raw):
    """raw [..., 2] -> location [...], scale [...]."""
    return raw[..., 0], jax.nn.softplus(raw[..., 1]) + SCALE_EPS

  def mean(self, raw):
    return raw[..., 0]

  def nll(self, raw, y):
    loc, scale = self.params(raw)
    return jnp.log(2 * scale) + jnp.abs(y - loc) / scale

  def sample(self, key, raw):
    loc, scale = self.params(raw)
    return loc + scale * jax.random.laplace(key, loc.shape, loc.dtype)


def make(config) -> LaplaceHead:
  del config  # nothing to read: its scale is learnt, not tied to the noise
  return LaplaceHead()
