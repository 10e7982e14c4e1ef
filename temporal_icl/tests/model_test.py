"""The transformer: shapes, causality, cached decoding, gin bindings."""

import gin
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import pytest

from temporal_icl.core import data
from temporal_icl.core import model
from temporal_icl.tests import tiny_config

PAPER_GIN = "configs/model/paper.gin"


@pytest.fixture(autouse=True)
def gin_bindings():
  gin.clear_config()
  gin.parse_config_files_and_bindings([PAPER_GIN], [], finalize_config=False)
  with gin.unlock_config():
    yield
  gin.clear_config()


def _config(head="point", blocks=2):
  c = tiny_config.get_config()
  c.D, c.K, c.head = 3, 5, head
  c.model.num_blocks = blocks
  return c


def _batch(c, B=4, seed=1):
  tasks = data.sample_task_set(jax.random.PRNGKey(0), 4, c.D)
  return data.sample_sequences(jax.random.PRNGKey(seed), tasks, B, c.K, c.noise_var)


def _init(c):
  net = model.make_model(c)
  xs, ys = _batch(c)
  return net, net.init(jax.random.PRNGKey(0), xs, ys), xs, ys


def test_tokenize_interleaves_pairs():
  xs = jnp.arange(12.0).reshape(1, 2, 6)[..., :3].reshape(1, 2, 3)
  ys = jnp.array([[10.0, 20.0]])
  tokens = model.tokenize(xs, ys)
  np.testing.assert_array_equal(tokens[0], [[0, *xs[0, 0]], [10, 0, 0, 0],
                                            [0, *xs[0, 1]], [20, 0, 0, 0]])


@pytest.mark.parametrize("head, P", [("point", 1), ("gaussian", 2), ("mog", 12)])
def test_output_shape(head, P):
  c = _config(head)
  net, params, xs, ys = _init(c)
  assert net.apply(params, xs, ys).shape == (4, c.K, P)


def test_parameter_count_matches_formula():
  c = _config()
  _, params, _, _ = _init(c)
  E, F, H, T, L, P = c.model.embed_size, c.D + 1, c.model.mlp_size, 2 * c.K, 2, 1
  # The paper's network: no bias on the embedding, Q, K, V or attention output.
  block = 4 * E * E + (E * H + H) + (H * E + E) + 2 * 2 * E
  expected = F * E + T * E + L * block + 2 * E + (E * P + P)
  assert sum(x.size for x in jax.tree.leaves(params)) == expected


@pytest.mark.parametrize("k", [0, 2, 4])
def test_prediction_k_ignores_y_k_and_later_pairs(k):
  c = _config("gaussian")
  net, params, xs, ys = _init(c)
  base = net.apply(params, xs, ys)
  later = net.apply(params, xs.at[:, k + 1:].add(5.0), ys.at[:, k:].add(-7.0))
  np.testing.assert_allclose(later[:, :k + 1], base[:, :k + 1], atol=1e-6)
  # Every prediction after k does change (there is none after k = K - 1).
  moved = np.abs(later - base).max(axis=(0, 2))  # [K]
  np.testing.assert_array_equal(moved > 1e-3, np.arange(c.K) > k)
  # The test has power: an earlier pair, y_j with j = k - 1 (y_0 for k = 0), does
  # matter to every prediction after it, k's included.
  j = max(k - 1, 0)
  earlier = net.apply(params, xs, ys.at[:, j].add(5.0))
  moved = np.abs(earlier - base).max(axis=(0, 2))  # [K]
  np.testing.assert_array_equal(moved > 1e-4, np.arange(c.K) > j)


@pytest.mark.parametrize("placement", ["pre", "post"])
def test_cached_decoding_reproduces_the_full_pass(placement):
  gin.bind_parameter("layer_norm_placement.placement", placement)
  c = _config("mog")
  net, params, xs, ys = _init(c)
  decoder = model.make_decoder(c)
  tokens = model.tokenize(xs, ys)

  def body(cache, inputs):
    position, token = inputs
    out, cache = decoder.apply(params, token, position, cache)
    return cache, out

  _, outs = jax.jit(lambda t: lax.scan(
      body, model.init_cache(c, 4), (jnp.arange(2 * c.K), jnp.swapaxes(t, 0, 1))))(tokens)
  cached = jnp.swapaxes(outs, 0, 1)[:, 0::2]
  np.testing.assert_allclose(cached, net.apply(params, xs, ys), rtol=1e-5, atol=1e-5)


def test_gin_is_read_when_the_network_is_built_and_only_then():
  c = _config()
  net, params, xs, ys = _init(c)
  relu = net.apply(params, xs, ys)
  gin.bind_parameter("activation.name", "tanh")
  # The built network keeps its structure; a network built now has the new one.
  np.testing.assert_array_equal(net.apply(params, xs, ys), relu)
  tanh_net = model.make_model(c)
  assert np.abs(tanh_net.apply(params, xs, ys) - relu).max() > 1e-4
  assert "positions" in params["transformer"]
  gin.bind_parameter("positional_embedding.kind", "none")
  assert "positions" in net.init(jax.random.PRNGKey(0), xs, ys)["transformer"]
  params = model.make_model(c).init(jax.random.PRNGKey(0), xs, ys)
  assert "positions" not in params.get("transformer", {})


def test_bad_gin_value_is_a_clear_error():
  gin.bind_parameter("activation.name", "swish")
  c = _config()
  with pytest.raises(ValueError, match="activation.name='swish'; valid: relu"):
    _init(c)
