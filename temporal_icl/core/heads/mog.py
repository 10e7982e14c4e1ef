"""head='mog': a mixture of G = config.num_components Gaussians (P = 3G), trained by NLL.

  Σ_g π_g N(μ_g, v_g),  π = softmax(logits),  v_g = softplus(r_g) + ε,

raw outputs laid out [logits | means | r].  As in the paper the component
variances are not floored at σ²; the gin binding
`mixture_variance_floor.at_noise = True` floors them there (this package's
choice before it matched the paper).
"""

import dataclasses

import gin
import jax
import jax.numpy as jnp

from temporal_icl.core.heads import _common


@gin.configurable
def mixture_variance_floor(at_noise: bool = False) -> bool:
  """Whether mixture component variances are floored at σ² (the paper: no)."""
  return at_noise


@dataclasses.dataclass(frozen=True)
class MixtureHead:
  noise_var: float
  num_components: int
  floor_at_noise: bool = False
  is_probabilistic: bool = True

  @property
  def num_outputs(self) -> int:
    return 3 * self.num_components

  def params(self, raw):
    """raw [..., 3G] -> log weights [..., G], means [..., G], variances [..., G]."""
    logits, means, raw_var = jnp.split(raw, 3, axis=-1)
    floor = self.noise_var if self.floor_at_noise else 0.0
    return (jax.nn.log_softmax(logits, axis=-1), means,
            floor + jax.nn.softplus(raw_var) + _common.VARIANCE_EPS)

  def mean(self, raw):
    log_w, means, _ = self.params(raw)
    return jnp.sum(jnp.exp(log_w) * means, axis=-1)

  def nll(self, raw, y):
    log_w, means, var = self.params(raw)
    return -jax.nn.logsumexp(log_w + _common.gaussian_logpdf(y[..., None], means, var),
                             axis=-1)

  def sample(self, key, raw):
    log_w, means, var = self.params(raw)
    pick_key, noise_key = jax.random.split(key)
    g = jax.random.categorical(pick_key, log_w, axis=-1)[..., None]  # [..., 1]
    mean = jnp.take_along_axis(means, g, axis=-1)[..., 0]
    std = jnp.sqrt(jnp.take_along_axis(var, g, axis=-1)[..., 0])
    return mean + std * jax.random.normal(noise_key, mean.shape, mean.dtype)


def problems(config):
  if config.num_components < 1:
    return [f"config.num_components={config.num_components} must be >= 1 for head='mog'."]
  return []


def make(config) -> MixtureHead:
  return MixtureHead(config.noise_var, config.num_components, mixture_variance_floor())
