"""Prediction heads: what the network's output at an x-token means.  One module each.

A head maps the raw network output [..., P] at position k to a predictive
distribution for y_k.  A head module (here, or anywhere importable) defines

  make(config) -> Head         the head of a run (reads noise_var, num_components, …)

and optionally problems(config) -> list of str (one sentence per invalid value).
A Head has

  num_outputs: int             P, network outputs per position
  is_probabilistic: bool       whether it has a likelihood (trained by NLL, sampled)
  mean(raw [..., P]) -> [...]  the prediction ŷ
  nll(raw, y) -> [...]         negative log-likelihood   (probabilistic heads)
  sample(key, raw) -> [...]    a draw of y               (probabilistic heads)

The paper's three: point (MSE), gaussian and mog (see their modules for the
math).  `config.head` names one: a plain name is a module of this package, a
dotted name (e.g. 'my_lab.student_t') is imported as is.  The list of heads is
derived from this package's modules, never kept by hand.
"""

import importlib
import sys
import types
from typing import List

import jax
import jax.numpy as jnp
import ml_collections

from temporal_icl.common import registry
from temporal_icl.core.heads._common import VARIANCE_EPS  # pylint: disable=unused-import


def names() -> List[str]:
  """The heads of this package (its public modules)."""
  return registry.public_modules(sys.modules[__name__])


def module(name: str) -> types.ModuleType:
  """The head module called `name` (ValueError, one sentence, if there is none)."""
  found = registry.find(sys.modules[__name__], name)
  if found is None or registry.part(found, "make") is None:
    raise ValueError(f"config.head={name!r} is not a head; valid: {', '.join(names())}, "
                     "or an importable module path.")
  return found


def from_config(config: ml_collections.ConfigDict):
  """The head of the run described by `config` (config.head names it)."""
  return module(config.head).make(config)


def get_head(name: str, noise_var: float, num_components: int = 4):
  """The head called `name` at noise variance σ² (a shortcut for tests and notebooks)."""
  return from_config(ml_collections.ConfigDict(
      dict(head=name, noise_var=noise_var, num_components=num_components)))


def problems(config: ml_collections.ConfigDict) -> List[str]:
  """Config-validation sentences: an unknown head, then the head's own checks."""
  try:
    found = module(config.head)
  except ValueError as e:
    return [str(e)]
  return list(registry.part(found, "problems", lambda config: [])(config))


def sampling_problems(config: ml_collections.ConfigDict, field: str) -> List[str]:
  """A sentence when `config.<field>` turns on sampling but the head cannot sample."""
  try:
    head = from_config(config)
  except ValueError:  # an unknown head: problems() reports it
    return []
  if head.is_probabilistic:
    return []
  return [f"config.{field}={config[field]!r} samples the implicit prior, which needs a "
          f"probabilistic head, but config.head={config.head!r}; set "
          "--config.head=gaussian or mog."]


def loss(head, raw: jax.Array, ys: jax.Array) -> jax.Array:
  """Training loss: MSE of the mean (point head) or mean NLL.  raw [B,K,P], ys [B,K]."""
  if head.is_probabilistic:
    return head.nll(raw, ys).mean()
  return jnp.square(head.mean(raw) - ys).mean()


# Import the package's heads so that their gin configurables (e.g. the mixture's
# variance floor) are registered before any gin file is parsed.
for _name in names():
  importlib.import_module(f"{__name__}.{_name}")
