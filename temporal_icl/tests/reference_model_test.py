"""Our default network is the paper's: same outputs from its weights, same initialisation.

`testdata/reference_model_vectors.npz` is a copy of the spec's vectors: the seed
implementation's initial weights at a small size, for each head, with its
outputs on fixed inputs (layout: `temporal_icl/analysis/convert.py`).
"""

import os

import gin
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from temporal_icl.analysis import convert
from temporal_icl.core import heads
from temporal_icl.core import model
from temporal_icl.tests import tiny_config

PAPER_GIN = "configs/model/paper.gin"
VECTORS = os.path.join(os.path.dirname(__file__), "testdata",
                       "reference_model_vectors.npz")


@pytest.fixture(autouse=True)
def paper_structure():
  gin.clear_config()
  gin.parse_config_files_and_bindings([PAPER_GIN], [])
  yield
  gin.clear_config()


@pytest.fixture(scope="module")
def vectors():
  with np.load(VECTORS) as z:
    return dict(z)


def _reference_config(vectors, head):
  D, K, num_blocks, num_heads, E, mlp, G = (int(v) for v in vectors["sizes"])
  c = tiny_config.get_config()
  c.D, c.K, c.head, c.num_components = D, K, head, G
  c.noise_var = float(vectors["noise_var"])
  c.model.num_blocks, c.model.num_heads = num_blocks, num_heads
  c.model.embed_size, c.model.mlp_size = E, mlp
  return c


def _reference_outputs(vectors, head_name):
  """Our raw outputs [B, K, P] from the seed's weights for `head_name`, and our head."""
  c = _reference_config(vectors, head_name)
  prefix = f"{head_name}/params/"
  weights = {k[len(prefix):]: v for k, v in vectors.items() if k.startswith(prefix)}
  params = convert.from_reference(weights)
  net = model.make_model(c)
  reference_shapes = jax.tree.map(jnp.shape, params)
  our_shapes = jax.tree.map(jnp.shape, net.init(
      jax.random.PRNGKey(0), vectors["inputs/xs"], vectors["inputs/ys"]))
  assert reference_shapes == our_shapes  # the same parameters, none missing or extra
  raw = net.apply(params, vectors["inputs/xs"], vectors["inputs/ys"])
  return raw, heads.get_head(head_name, c.noise_var, c.num_components)


def test_point_head_outputs_equal_the_papers(vectors):
  raw, head = _reference_outputs(vectors, "point")
  np.testing.assert_allclose(head.mean(raw), vectors["point/outputs/mean"], atol=1e-5)


def test_gaussian_head_outputs_equal_the_papers(vectors):
  raw, head = _reference_outputs(vectors, "gaussian")
  mean, var = head.params(raw)
  np.testing.assert_allclose(mean, vectors["gaussian/outputs/mean"], atol=1e-5)
  np.testing.assert_allclose(var, vectors["gaussian/outputs/var"], atol=1e-5)


def test_mixture_head_outputs_equal_the_papers(vectors):
  raw, head = _reference_outputs(vectors, "mog")
  log_w, means, var = head.params(raw)
  logits = raw[..., :head.num_components]
  np.testing.assert_allclose(logits, vectors["mog/outputs/logits"], atol=1e-5)
  np.testing.assert_allclose(means, vectors["mog/outputs/means"], atol=1e-5)
  np.testing.assert_allclose(var, vectors["mog/outputs/vars"], atol=1e-5)
  # The paper does not floor component variances at σ²: some fall below it.
  assert np.min(vectors["mog/outputs/vars"]) < 0.25


# Initialisation statistics at a size where every matrix has >= 576 entries.
def _initial_params(head="mog"):
  c = tiny_config.get_config()
  c.D, c.K, c.head = 8, 16, head
  c.model.num_blocks, c.model.num_heads = 2, 4
  c.model.embed_size, c.model.mlp_size = 64, 128
  xs, ys = jnp.zeros((1, c.K, c.D)), jnp.zeros((1, c.K))
  params = model.make_model(c).init(jax.random.PRNGKey(7), xs, ys)
  return {f"{module}/{name}": np.asarray(v, np.float64)
          for module, leaves in params.items() for name, v in leaves.items()}


def _check_uniform(values: np.ndarray, limit: float, name: str):
  """values ~ uniform(±limit), tested with explicit 5-sigma / p>1e-3 tolerances."""
  n = values.size
  assert np.abs(values).max() <= limit * (1 + 1e-6), name
  # P(max |w| < limit (1 − 20/n)) = (1 − 20/n)^n ≈ e^-20: the bound is reached.
  assert np.abs(values).max() >= limit * (1 - 20 / n), name
  # mean: sd limit/√(3n); variance limit²/3: relative sd of the estimate √(0.8/n).
  assert abs(values.mean()) <= 5 * limit / np.sqrt(3 * n), name
  assert abs(values.var() / (limit ** 2 / 3) - 1) <= 5 * np.sqrt(0.8 / n), name
  assert stats.kstest(values.ravel() / limit, stats.uniform(-1, 2).cdf).pvalue > 1e-3, name


def test_every_weight_matrix_starts_uniform_within_one_over_root_fan_in():
  params = _initial_params()
  matrices = {k: v for k, v in params.items() if k.endswith("/w")}
  assert len(matrices) == 1 + 2 * 6 + 1  # embed, 2 x (q, k, v, out, hidden, output), head
  for name, w in matrices.items():
    _check_uniform(w, 1 / np.sqrt(w.shape[0]), name)


def test_positional_table_starts_uniform_within_one_over_root_T():
  table = _initial_params()["transformer/positions"]
  assert table.shape == (32, 64)
  _check_uniform(table, 1 / np.sqrt(32), "positions")


def test_only_mlp_and_unembedding_have_biases_and_they_start_at_zero():
  biases = {k: v for k, v in _initial_params().items() if k.endswith("/b")}
  expected = {"transformer/head/b"} | {f"transformer/block_{i}/{layer}/b"
                                      for i in range(2) for layer in ("hidden", "output")}
  assert set(biases) == expected
  for name, b in biases.items():
    np.testing.assert_array_equal(b, 0.0, err_msg=name)


def test_variant_gin_restores_the_earlier_network():
  gin.clear_config()
  gin.parse_config_files_and_bindings(
      [PAPER_GIN, "configs/model/variant_biased_normal.gin"], [])
  params = _initial_params()
  assert "transformer/embed/b" in params and "transformer/block_0/attention/query/b" in params
  w = params["transformer/block_0/attention/query/w"]
  # truncated normal of variance 1/fan_in (Haiku rescales for the cut): 3x the paper's
  assert abs(w.var() * 64 - 1) < 0.1
  assert np.abs(w).max() > 1 / 8
  _, _, var = heads.get_head("mog", 0.25, 4).params(-30.0 * jnp.ones(12))
  np.testing.assert_allclose(var, 0.25 + 1e-6, rtol=1e-6)
