"""The transformer: a Haiku decoder over interleaved (x, y) tokens.

Shape letters: B batch, K pairs per sequence, D task dimension, F = D + 1 token
size, T = 2K tokens, E embedding size, H heads, P head outputs.

Tokenisation: x_1, y_1, x_2, y_2, ... where an x token is (0, x_k) and a y token
is (y_k, 0, ..., 0).  The output read at x-token 2k predicts y_k from the pairs
before it and x_k; causal attention guarantees nothing later leaks in.

Sizes come from `config.model` (ml_collections).  Structural choices are gin
bindings of the `@gin.configurable` factories below; `configs/model/paper.gin`
binds the paper's choices.  They are read once, when `make_model` or
`make_decoder` is called, into a `Structure` that the modules hold as a field:
nothing reads gin while tracing, so a model keeps its structure whatever gin
holds later.

Cached decoding: `make_decoder(config)` runs the same parameters one token at a
time.  Each attention layer keeps keys and values of all T positions in a
fixed-shape cache [B, T, H, E/H]; a new token writes its slot and attends to
slots <= its position, so a rollout costs O(T) per token instead of O(T²).
"""

import dataclasses
from typing import Any, Callable, Dict, List, Optional

import gin
import haiku as hk
import jax
import jax.numpy as jnp
import ml_collections

from temporal_icl.core import heads as heads_lib
from temporal_icl.core import layer_norm

Cache = List[Dict[str, jax.Array]]  # per layer: {'k': [B,T,H,Dh], 'v': [B,T,H,Dh]}

_ACTIVATIONS = {"relu": jax.nn.relu, "gelu": jax.nn.gelu, "silu": jax.nn.silu,
                "tanh": jnp.tanh}


@gin.configurable
def activation(name: str = "relu"):
  """The MLP nonlinearity: 'relu' | 'gelu' | 'silu' | 'tanh'."""
  if name not in _ACTIVATIONS:
    raise ValueError(f"activation.name={name!r}; valid: {', '.join(_ACTIVATIONS)}.")
  return _ACTIVATIONS[name]


@gin.configurable
def layer_norm_placement(placement: str = "pre") -> str:
  """'pre': x + f(LN(x)), with a final LN.  'post': LN(x + f(x)), no final LN."""
  if placement not in ("pre", "post"):
    raise ValueError(f"layer_norm_placement.placement={placement!r}; valid: pre, post.")
  return placement


@gin.configurable
def positional_embedding(kind: str = "learned") -> str:
  """'learned': a trained [T, E] table added to token embeddings; 'none'."""
  if kind not in ("learned", "none"):
    raise ValueError(f"positional_embedding.kind={kind!r}; valid: learned, none.")
  return kind


@gin.configurable
def weight_init(scale: float = 1 / 3, distribution: str = "uniform"):
  """Fan-in variance scaling of every weight matrix: Var(w) = scale / fan_in.

  The default (scale 1/3, 'uniform') is the paper's uniform(±1/√fan_in);
  distribution may also be 'truncated_normal' or 'normal'.
  """
  return hk.initializers.VarianceScaling(scale, "fan_in", distribution)


@gin.configurable
def biases(embedding: bool = False, attention: bool = False) -> Dict[str, bool]:
  """Which linear maps carry a bias besides the MLP and unembedding (which always do).

  The paper's network has none on the token embedding (embedding) nor on the
  query/key/value and output maps of attention (attention).
  """
  return {"embedding": embedding, "attention": attention}


@gin.configurable
def positional_init(num_positions: int, distribution: str = "uniform"):
  """Initialiser of the learned [T, E] positional table, T = num_positions.

  'uniform': uniform(±1/√T), the paper's; 'truncated_normal': std 0.02.
  """
  if distribution == "uniform":
    limit = num_positions ** -0.5
    return hk.initializers.RandomUniform(-limit, limit)
  if distribution == "truncated_normal":
    return hk.initializers.TruncatedNormal(0.02)
  raise ValueError(f"positional_init.distribution={distribution!r}; "
                   "valid: uniform, truncated_normal.")


@dataclasses.dataclass(frozen=True)
class Structure:
  """The structural choices of the network, resolved from gin once."""
  activation: Callable[[jax.Array], jax.Array]
  layer_norm: str  # 'pre' | 'post'
  positional: str  # 'learned' | 'none'
  weight_init: Any  # a Haiku initializer for every weight matrix
  positional_init: Any  # a Haiku initializer for the positional table
  embedding_bias: bool
  attention_bias: bool


def resolve_structure(num_positions: int) -> Structure:
  """Reads every structural gin binding now (num_positions: T of the table)."""
  bias = biases()
  return Structure(activation=activation(), layer_norm=layer_norm_placement(),
                   positional=positional_embedding(), weight_init=weight_init(),
                   positional_init=positional_init(num_positions),
                   embedding_bias=bias["embedding"], attention_bias=bias["attention"])


def _layer_norm(name):
  return layer_norm.LayerNorm(name=name)


def tokenize(xs: jax.Array, ys: jax.Array) -> jax.Array:
  """xs [B, K, D], ys [B, K] -> tokens [B, 2K, D+1]: (0, x_k), (y_k, 0..0), ..."""
  B, K, D = xs.shape
  x_tokens = jnp.concatenate([jnp.zeros((B, K, 1), xs.dtype), xs], axis=-1)
  y_tokens = jnp.concatenate([ys[..., None], jnp.zeros((B, K, D), xs.dtype)], axis=-1)
  return jnp.stack([x_tokens, y_tokens], axis=2).reshape(B, 2 * K, D + 1)


def _qkv_weights(E: int, structure: Structure):
  """The query, key and value maps side by side: w [E, 3E] (and b [3E] with biases).

  Their parameters are query/w, key/w and value/w (and /b), as three hk.Linear
  would make them, in the same order (so with the same initial values); called in
  an attention module, applied as one matmul.
  """
  ws, bs = [], []
  for name in ("query", "key", "value"):
    with hk.name_scope(name):
      ws.append(hk.get_parameter("w", [E, E], init=structure.weight_init))
      if structure.attention_bias:
        bs.append(hk.get_parameter("b", [E], init=jnp.zeros))
  return jnp.concatenate(ws, axis=1), (jnp.concatenate(bs) if bs else None)


def _attend(q, k, v, mask):
  """One head: q [B, T', dh], k and v [B, T, dh], mask [T', T] -> [B, T', dh]."""
  logits = jnp.einsum("bqd,bkd->bqk", q, k) / jnp.sqrt(q.shape[-1]).astype(q.dtype)
  logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
  return jnp.einsum("bqk,bkd->bqd", jax.nn.softmax(logits, axis=-1), v)


@dataclasses.dataclass
class CausalSelfAttention(hk.Module):
  """Multi-head causal self-attention, over a full sequence or one cached token."""
  num_heads: int  # H
  structure: Structure
  name: Optional[str] = None

  def __call__(self, h, batch_size: int, cache=None, position=None):
    """h [N, E] holding N = B·T' tokens; with a cache, the T' tokens of each sequence
    sit at position, position + 1, …  Returns [N, E] (and the updated cache).

    Each head attends on its own [B, T', E/H] arrays: the columns of the one
    Q/K/V matmul are split (jnp.split, whose gradient is a concatenation) into
    3H column blocks, and each head's two einsums have the batch as their
    leading axis, so XLA needs no [B, T, H, E/H] -> [B, H, T, E/H] transposes
    (README "Benchmarks").
    """
    N, E = h.shape
    B, T, H = batch_size, N // batch_size, self.num_heads
    dh = E // H
    w, b = _qkv_weights(E, self.structure)
    qkv = h @ w if b is None else h @ w + b  # [N, 3E]
    blocks = [x.reshape(B, T, dh) for x in jnp.split(qkv, 3 * H, axis=1)]
    q, k, v = blocks[:H], blocks[H:2 * H], blocks[2 * H:]  # H × [B, T', dh] each
    if cache is None:
      mask = jnp.tril(jnp.ones((T, T), bool))  # [T, T]: query i sees keys <= i
      new_cache = None
    else:
      keys = jax.lax.dynamic_update_slice_in_dim(cache["k"], jnp.stack(k, 2), position, axis=1)
      values = jax.lax.dynamic_update_slice_in_dim(cache["v"], jnp.stack(v, 2), position,
                                                   axis=1)
      new_cache = {"k": keys, "v": values}  # [B, T, H, dh] each
      k = [keys[:, :, i] for i in range(H)]
      v = [values[:, :, i] for i in range(H)]
      # [T', T]: the token at position + i sees the cached slots <= position + i.
      mask = jnp.arange(keys.shape[1])[None, :] <= position + jnp.arange(T)[:, None]
    out = jnp.concatenate([_attend(q[i], k[i], v[i], mask).reshape(N, dh)
                           for i in range(H)], axis=1)  # [N, E]
    out = hk.Linear(E, with_bias=self.structure.attention_bias,
                    w_init=self.structure.weight_init, name="out")(out)
    return out, new_cache


@dataclasses.dataclass
class Block(hk.Module):
  """One transformer block: attention then MLP, each with a residual."""
  num_heads: int  # H
  mlp_size: int  # hidden units of the MLP
  structure: Structure
  name: Optional[str] = None

  def __call__(self, h, batch_size: int, cache=None, position=None):
    """h [N, E], the N = B·T' tokens of the batch in one matrix."""
    E = h.shape[-1]
    s = self.structure
    attention = CausalSelfAttention(self.num_heads, s, name="attention")
    attend = lambda x, cache: attention(x, batch_size, cache, position)
    mlp = hk.Sequential([hk.Linear(self.mlp_size, w_init=s.weight_init, name="hidden"),
                         s.activation,
                         hk.Linear(E, w_init=s.weight_init, name="output")], name="mlp")
    ln_attention, ln_mlp = _layer_norm("ln_attention"), _layer_norm("ln_mlp")
    if s.layer_norm == "pre":
      a, cache = attend(ln_attention(h), cache)
      h = h + a
      return h + mlp(ln_mlp(h)), cache
    a, cache = attend(h, cache)
    h = ln_attention(h + a)
    return ln_mlp(h + mlp(h)), cache


@dataclasses.dataclass
class Transformer(hk.Module):
  """Token embedding, positional embedding, blocks, final LayerNorm, linear head.

  Between the embedding and the head the B·T' tokens of a batch are one [N, E]
  matrix, split into per-head [B, T', E/H] blocks only inside attention: every
  linear map is then a 2-D matmul, and Q, K and V are one.  On XLA's CPU backend
  this makes the training step 2–2.4× faster at the demo's size than the same
  network written on [B, T', E] arrays, whose gradients XLA lowers to layout
  copies that recompute the backward pass's elementwise work (measured
  2026-12-01); per-head blocks and layer_norm's closed-form gradient took
  another 15–18% off at the demo's size and 5–9% at paper size on 2026-12-02
  (README "Benchmarks").
  """
  num_blocks: int  # transformer blocks
  num_heads: int  # attention heads per block
  embed_size: int  # E
  mlp_size: int  # MLP hidden units
  max_len: int  # T, positions of the learned positional table
  num_outputs: int  # P, raw head outputs per position
  structure: Structure
  name: Optional[str] = None

  def __call__(self, tokens, cache: Optional[Cache] = None, position=None):
    """tokens [B, T', F] -> raw outputs [B, T', P] (and the updated cache).

    Without a cache T' is the whole sequence; with one, the T' tokens continue
    the cached sequence at positions position, …, position + T' − 1.
    """
    s = self.structure
    B, T, F = tokens.shape
    E = self.embed_size
    h = hk.Linear(E, with_bias=s.embedding_bias, w_init=s.weight_init,
                  name="embed")(tokens.reshape(B * T, F))  # [N, E]
    if s.positional == "learned":
      table = hk.get_parameter("positions", [self.max_len, E], init=s.positional_init)
      rows = (table[:T] if cache is None
              else jax.lax.dynamic_slice_in_dim(table, position, T))  # [T', E]
      h = (h.reshape(B, T, E) + rows).reshape(B * T, E)
    new_cache = []
    for i in range(self.num_blocks):
      layer_cache = None if cache is None else cache[i]
      h, layer_cache = Block(self.num_heads, self.mlp_size, s, name=f"block_{i}")(
          h, B, layer_cache, position)
      new_cache.append(layer_cache)
    if s.layer_norm == "pre":
      h = _layer_norm("ln_final")(h)
    out = hk.Linear(self.num_outputs, w_init=s.weight_init, name="head")(h)
    return out.reshape(B, T, self.num_outputs), (None if cache is None else new_cache)


def _transformer_factory(config: ml_collections.ConfigDict) -> Callable[[], Transformer]:
  """Reads sizes and gin structure now; returns a constructor for inside hk.transform."""
  head = heads_lib.from_config(config)
  m = config.model
  structure = resolve_structure(2 * config.K)
  return lambda: Transformer(num_blocks=m.num_blocks, num_heads=m.num_heads,
                             embed_size=m.embed_size, mlp_size=m.mlp_size,
                             max_len=2 * config.K, num_outputs=head.num_outputs,
                             structure=structure, name="transformer")


def make_model(config: ml_collections.ConfigDict) -> hk.Transformed:
  """apply(params, xs [B,K,D], ys [B,K]) -> raw head outputs at x tokens [B, K, P]."""
  transformer = _transformer_factory(config)

  def forward(xs, ys):
    out, _ = transformer()(tokenize(xs, ys))
    return out[:, 0::2]  # x-token positions

  return hk.without_apply_rng(hk.transform(forward))


def make_decoder(config: ml_collections.ConfigDict) -> hk.Transformed:
  """apply(params, tokens, position, cache) -> (raw, cache), with a KV cache.

  tokens [B, F] (one token; raw [B, P]) or [B, T', F] (a chunk continuing the
  sequence at `position`; raw [B, T', P]).  Shares parameters with
  `make_model(config)`; `position` may be traced.
  """

  transformer = _transformer_factory(config)

  def step(tokens, position, cache):
    chunk = tokens if tokens.ndim == 3 else tokens[:, None]
    out, cache = transformer()(chunk, cache, position)
    return (out if tokens.ndim == 3 else out[:, 0]), cache

  return hk.without_apply_rng(hk.transform(step))


def init_cache(config: ml_collections.ConfigDict, batch_size: int,
               dtype=jnp.float32) -> Cache:
  """Zeros for every layer's keys and values: [B, 2K, H, E/H] each."""
  m = config.model
  shape = (batch_size, 2 * config.K, m.num_heads, m.embed_size // m.num_heads)
  return [{"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype)}
          for _ in range(m.num_blocks)]
