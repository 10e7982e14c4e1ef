"""head='point': a scalar prediction ŷ = r (P = 1), trained by MSE.

It has no likelihood, so no NLL and no samples: measurements of the implicit
prior need a probabilistic head.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class PointHead:
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


def make(config) -> PointHead:
  return PointHead(config.noise_var)
