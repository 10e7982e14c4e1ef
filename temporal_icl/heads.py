"""Prediction heads: what the network's output at an x-token means.

Each head maps the raw network output [..., P] at position k to a predictive
distribution for y_k.  With σ² = noise_var and softplus(r) = log(1 + e^r):

  point     P = 1    ŷ = r                                  (trained by MSE)
  gaussian  P = 2    N(μ, v),  v = σ² + softplus(r_v) + ε   (trained by NLL)
  mog       P = 3G   Σ_g π_g N(μ_g, v_g),  π = softmax(logits),
                     v_g = softplus(r_g) + ε                (trained by NLL)

with ε = 1e-6 and the raw mixture outputs laid out [logits | means | r].  These
are the paper's heads: the Gaussian variance is floored at the noise variance
(no predictor can know y better than the noise allows), the mixture's
components are not.  The gin binding `mixture_variance_floor.at_noise = True`
floors them at σ² as well (this package's choice before it matched the paper).
"""

import dataclasses
import math

import gin
import jax
import jax.numpy as jnp

VARIANCE_EPS = 1e-6
_LOG_2PI = math.log(2 * math.pi)


def _gaussian_logpdf(y, mean, var):
  return -0.5 * (_LOG_2PI + jnp.log(var) + jnp.square(y - mean) / var)


@dataclasses.dataclass(frozen=True)
class PointHead:
  """A scalar prediction; no likelihood, so no NLL or sampling."""
  noise_var: float
  num_outputs: int = 1
  is_probabilistic: bool = False

  def mean(self, raw):  # [..., 1] -> [...]
    return raw[..., 0]

  def nll(self, raw, y):
    raise ValueError("head='point' has no likelihood; use head='gaussian' or 'mog'.")

  def sample(self, key, raw):
    raise ValueError("Sampling needs a probabilistic head, but head='point'; use "
                     "head='gaussian' or 'mog'.")


@dataclasses.dataclass(frozen=True)
class GaussianHead:
  """N(mean, variance) with the variance floored at the noise variance."""
  noise_var: float
  num_outputs: int = 2
  is_probabilistic: bool = True

  def params(self, raw):
    """raw [..., 2] -> mean [...], variance [...]."""
    return raw[..., 0], self.noise_var + jax.nn.softplus(raw[..., 1]) + VARIANCE_EPS

  def mean(self, raw):
    return raw[..., 0]

  def nll(self, raw, y):
    mean, var = self.params(raw)
    return -_gaussian_logpdf(y, mean, var)

  def sample(self, key, raw):
    mean, var = self.params(raw)
    return mean + jnp.sqrt(var) * jax.random.normal(key, mean.shape, mean.dtype)


@gin.configurable
def mixture_variance_floor(at_noise: bool = False) -> bool:
  """Whether mixture component variances are floored at σ² (the paper: no)."""
  return at_noise


@dataclasses.dataclass(frozen=True)
class MixtureHead:
  """A mixture of G Gaussians; component variances floored at σ² only if asked."""
  noise_var: float
  num_components: int
  floor_at_noise: bool = False

  @property
  def num_outputs(self) -> int:
    return 3 * self.num_components

  is_probabilistic: bool = True

  def params(self, raw):
    """raw [..., 3G] -> log weights [..., G], means [..., G], variances [..., G]."""
    logits, means, raw_var = jnp.split(raw, 3, axis=-1)
    floor = self.noise_var if self.floor_at_noise else 0.0
    return (jax.nn.log_softmax(logits, axis=-1), means,
            floor + jax.nn.softplus(raw_var) + VARIANCE_EPS)

  def mean(self, raw):
    log_w, means, _ = self.params(raw)
    return jnp.sum(jnp.exp(log_w) * means, axis=-1)

  def nll(self, raw, y):
    log_w, means, var = self.params(raw)
    return -jax.nn.logsumexp(log_w + _gaussian_logpdf(y[..., None], means, var), axis=-1)

  def sample(self, key, raw):
    log_w, means, var = self.params(raw)
    pick_key, noise_key = jax.random.split(key)
    g = jax.random.categorical(pick_key, log_w, axis=-1)[..., None]  # [..., 1]
    mean = jnp.take_along_axis(means, g, axis=-1)[..., 0]
    std = jnp.sqrt(jnp.take_along_axis(var, g, axis=-1)[..., 0])
    return mean + std * jax.random.normal(noise_key, mean.shape, mean.dtype)


# name -> f(noise_var, num_components): the one list of heads (validation reads it).
_BUILDERS = {
    "point": lambda noise_var, _: PointHead(noise_var),
    "gaussian": lambda noise_var, _: GaussianHead(noise_var),
    "mog": lambda noise_var, G: MixtureHead(noise_var, G, mixture_variance_floor()),
}
NAMES = tuple(_BUILDERS)


def get_head(name: str, noise_var: float, num_components: int = 4):
  """The head called `name` (one of NAMES), with gin's mixture floor."""
  if name not in _BUILDERS:
    raise ValueError(f"Unknown head {name!r}; valid: {', '.join(NAMES)}.")
  return _BUILDERS[name](noise_var, num_components)


def loss(head, raw: jax.Array, ys: jax.Array) -> jax.Array:
  """Training loss: MSE of the mean (point head) or mean NLL.  raw [B,K,P], ys [B,K]."""
  if head.is_probabilistic:
    return head.nll(raw, ys).mean()
  return jnp.square(head.mean(raw) - ys).mean()
