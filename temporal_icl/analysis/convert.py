"""Weights of the paper's own implementation -> this package's Haiku parameters.

The seed implementation (TAIS 2026) stores its network as a flat mapping from
'/'-joined paths to arrays, with the blocks stacked on a leading axis NB:

  token_embedding/weights [F, E]        postn_embedding/weights [T, E]
  blocks/layernorm1/{loc,scale} [NB, E] blocks/attention/QKV/weights [NB, 3, E, E]
  blocks/attention/output_transform/weights [NB, E, E]
  blocks/layernorm2/{loc,scale} [NB, E]
  blocks/compute/layer1/{weights [NB, E, mlp], biases [NB, mlp]}
  blocks/compute/layer2/{weights [NB, mlp, E], biases [NB, E]}
  unembedding_layernorm/{loc,scale} [E] unembedding/{weights [E, P], biases [P]}

Every matrix multiplies from the left (x @ W), as `hk.Linear` does, so the
mapping is a renaming and an unstacking; no transposes.  It assumes the paper's
structure (`configs/model/paper.gin`: no embedding or attention biases).
"""

from typing import Mapping

import numpy as np

_PREFIX = "transformer"


def from_reference(weights: Mapping[str, np.ndarray]) -> dict:
  """The seed's flat weights (paths above) -> params for `model.make_model`."""
  qkv = weights["blocks/attention/QKV/weights"]  # [NB, 3, E, E]
  params = {
      _PREFIX: {"positions": weights["postn_embedding/weights"]},
      f"{_PREFIX}/embed": {"w": weights["token_embedding/weights"]},
      f"{_PREFIX}/ln_final": {"offset": weights["unembedding_layernorm/loc"],
                              "scale": weights["unembedding_layernorm/scale"]},
      f"{_PREFIX}/head": {"w": weights["unembedding/weights"],
                          "b": weights["unembedding/biases"]},
  }
  for i in range(qkv.shape[0]):
    block = lambda path: weights[f"blocks/{path}"][i]
    name = f"{_PREFIX}/block_{i}"
    for j, part in enumerate(("query", "key", "value")):
      params[f"{name}/attention/{part}"] = {"w": qkv[i, j]}
    params[f"{name}/attention/out"] = {"w": block("attention/output_transform/weights")}
    params[f"{name}/ln_attention"] = {"offset": block("layernorm1/loc"),
                                      "scale": block("layernorm1/scale")}
    params[f"{name}/ln_mlp"] = {"offset": block("layernorm2/loc"),
                                "scale": block("layernorm2/scale")}
    params[f"{name}/hidden"] = {"w": block("compute/layer1/weights"),
                                "b": block("compute/layer1/biases")}
    params[f"{name}/output"] = {"w": block("compute/layer2/weights"),
                                "b": block("compute/layer2/biases")}
  return params
