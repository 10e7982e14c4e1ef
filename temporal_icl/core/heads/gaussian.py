"""head='gaussian': N(μ, v) with v = σ² + softplus(r_v) + ε (P = 2), trained by NLL.

The variance is floored at the noise variance σ², as in the paper: no predictor
can know y better than the noise allows.  Raw outputs are laid out [μ | r_v].
"""

import dataclasses

import jax
import jax.numpy as jnp

from temporal_icl.core.heads import _common


@dataclasses.dataclass(frozen=True)
class GaussianHead:
  noise_var: float
  num_outputs: int = 2
  is_probabilistic: bool = True

  def params(self, raw):
    """raw [..., 2] -> mean [...], variance [...]."""
    return (raw[..., 0],
            self.noise_var + jax.nn.softplus(raw[..., 1]) + _common.VARIANCE_EPS)

  def mean(self, raw):
    return raw[..., 0]

  def nll(self, raw, y):
    mean, var = self.params(raw)
    return -_common.gaussian_logpdf(y, mean, var)

  def sample(self, key, raw):
    mean, var = self.params(raw)
    return mean + jnp.sqrt(var) * jax.random.normal(key, mean.shape, mean.dtype)


def make(config) -> GaussianHead:
  return GaussianHead(config.noise_var)
