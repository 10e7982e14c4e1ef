"""The model's implicit prior over tasks, by predictive Monte Carlo (PMC).

A rollout starts from no prompt (or an optional prompt of pairs), draws
x_k ~ N(0, I_D), samples y_k from the model's predictive distribution given the
rollout so far, appends the pair and continues for L pairs.  A least-squares
fit to each rollout, the minimum-norm solution t̂ = pinv(X) y of
min_t ‖X t − y‖² (`ols_fit`; it equals (XᵀX)⁻¹Xᵀy only when X has full column
rank, L >= D), is one sample from the model's implicit prior (the task it "had
in mind").  The measurements compare S such samples, by energy distance
(temporal_icl.measurements.methods.energy), with samples of the reference
priors drawn here: ridge, N(0, I_D) (`sample_ridge_prior`), and dMMSE, uniform
over the training tasks (`sample_dmmse_prior`).

Two samplers produce identical rollouts from the same key:
  `rollout`               keys/values cached per layer: each token attends to the
                          cache, O(T) work per token;
  `rollout_full_recompute` re-runs the network over the whole sequence for each
                          pair, O(T²) per token (a reference, and the benchmark's
                          baseline).
Both take a `Network` built once by `network(config)`, outside any jit, so that
gin is read when the network is built and never while tracing.  Both check their
arguments alike (temporal_icl.common.arguments: one-sentence errors on static shapes, so
also under jit) and return empty arrays when S or L is 0.
Shape letters: S rollouts, L pairs per rollout, P prompt pairs, D dimension.
"""

import functools
from typing import Any, NamedTuple, Optional, Tuple

import jax
from jax import lax
import jax.numpy as jnp
import ml_collections

from temporal_icl.common import arguments
from temporal_icl.core import heads as heads_lib
from temporal_icl.core import model as model_lib


class Network(NamedTuple):
  """What a rollout runs: the run's config, its head, and its network two ways."""
  config: ml_collections.ConfigDict
  head: Any  # a probabilistic head (temporal_icl.core.heads)
  decoder: Any  # model.make_decoder(config): one token at a time, with a KV cache
  model: Any  # model.make_model(config): the whole sequence at once


def network(config: ml_collections.ConfigDict, head=None) -> Network:
  """Builds the head (unless given: the experiment's) and both forms of the network
  (reading gin) now.

  Raises:
    ValueError: the head has no predictive distribution to sample from.
  """
  head = heads_lib.from_config(config) if head is None else head
  if not head.is_probabilistic:
    raise ValueError("Predictive Monte Carlo samples y from the model's predictive "
                     "distribution, which needs a probabilistic head, but "
                     f"config.head={config.head!r}; use head='gaussian' or 'mog'.")
  return Network(config, head, model_lib.make_decoder(config), model_lib.make_model(config))


def _rollout_inputs(key, S, L, D):
  """Inputs [S, L, D] and one sampling key per pair [L, 2]."""
  x_key, y_key = jax.random.split(key)
  return jax.random.normal(x_key, (S, L, D)), jax.random.split(y_key, L)


def _check_length(caller, config, L, P):
  if L + P > config.K:
    raise ValueError(f"{caller}: a rollout of {L} pairs after a {P}-pair prompt exceeds "
                     f"the model's context of K={config.K} pairs.")


def _checked(caller, net, key, num_samples, num_pairs, prompt):
  """(S, L, prompt, P) of a rollout's arguments, checked the same way for both samplers.

  The prompt comes back as arrays (xs [P, D], ys [P]), or None.
  """
  if not isinstance(net, Network):
    raise TypeError(f"{caller}: net must be predictive.network(config); got "
                    f"{type(net).__name__}.")
  arguments.key(caller, "key", key)
  S = arguments.count(caller, "num_samples", num_samples)
  L = arguments.count(caller, "num_pairs", num_pairs)
  P = 0
  if prompt is not None:
    if not isinstance(prompt, (tuple, list)) or len(prompt) != 2:
      raise TypeError(f"{caller}: prompt must be a pair (xs [P, D], ys [P]) or None; got "
                      f"{arguments.describe(prompt)}.")
    dims = {"D": (net.config.D, f"config.D = {net.config.D}")}
    prompt = (arguments.array(caller, "prompt xs", prompt[0], "P D", dims),
              arguments.array(caller, "prompt ys", prompt[1], "P", dims))
    P = prompt[0].shape[0]
  _check_length(caller, net.config, L, P)
  return S, L, prompt, P


def rollout(params, net: Network, key: jax.Array, num_samples: int, num_pairs: int,
            prompt: Optional[Tuple[jax.Array, jax.Array]] = None):
  """Samples S = num_samples rollouts of L = num_pairs pairs with a KV cache.

  Args:
    params: the model's parameters (`model.make_model(config)`).
    net: `network(config)` of the run.
    key: PRNG key; the same key gives the same rollouts in both samplers.
    num_samples: S >= 0, an int.
    num_pairs: L >= 0, an int, with L + P <= config.K.
    prompt: optional (xs [P, D], ys [P]) shown before every rollout (arrays or
      nested lists of numbers).

  Returns:
    xs [S, L, D], ys [S, L] (the sampled pairs, prompt excluded); empty arrays
    of these shapes when S or L is 0 (a prompt that fills the context leaves
    L = 0), in both samplers.

  Raises:
    TypeError: net is not a `Network`, key not one PRNG key, num_samples or
      num_pairs not an int, or prompt not a pair of arrays.
    ValueError: num_samples or num_pairs is negative, a prompt array has the
      wrong shape (ys [P, 1] or a 1-D xs included), or L + P exceeds the
      context K.
  """
  S, L, prompt, P = _checked("predictive.rollout", net, key, num_samples, num_pairs, prompt)
  config, head, decoder = net.config, net.head, net.decoder
  D = config.D
  xs, y_keys = _rollout_inputs(key, S, L, D)
  if S == 0 or L == 0:
    return xs, jnp.zeros((S, L), xs.dtype)
  prompt_tokens = (jnp.zeros((0, D + 1)) if prompt is None
                   else model_lib.tokenize(prompt[0][None], prompt[1][None])[0])

  # The prompt and the first x in one chunk; then one two-token chunk per pair:
  # the sampled y_k and the next x, whose output predicts y_{k+1}.
  x_tokens = jnp.concatenate([jnp.zeros((S, L, 1)), xs], axis=-1)  # [S, L, F]
  first = jnp.concatenate(
      [jnp.broadcast_to(prompt_tokens, (S,) + prompt_tokens.shape), x_tokens[:, :1]], 1)
  raw, cache = decoder.apply(params, first, 0, model_lib.init_cache(config, S))
  y0 = head.sample(y_keys[0], raw[:, -1])  # [S]

  def pair(carry, inputs):
    cache, y = carry
    k, x_token, y_key = inputs  # x_token of pair k + 1
    y_token = jnp.concatenate([y[:, None], jnp.zeros((S, D))], axis=-1)
    raw, cache = decoder.apply(params, jnp.stack([y_token, x_token], 1),
                               2 * (P + k) + 1, cache)
    next_y = head.sample(y_key, raw[:, 1])
    return (cache, next_y), next_y

  _, ys = lax.scan(pair, (cache, y0), (jnp.arange(L - 1), jnp.swapaxes(x_tokens[:, 1:], 0, 1),
                                       y_keys[1:]))
  return xs, jnp.concatenate([y0[:, None], jnp.swapaxes(ys, 0, 1)], axis=1)


def rollout_full_recompute(params, net: Network, key, num_samples, num_pairs, prompt=None):
  """`rollout` without a cache: the whole sequence is re-run for every pair.

  Same arguments, results (to float rounding) and errors as `rollout`.
  """
  S, L, prompt, P = _checked("predictive.rollout_full_recompute", net, key, num_samples,
                             num_pairs, prompt)
  config, head, model = net.config, net.head, net.model
  D = config.D
  xs, y_keys = _rollout_inputs(key, S, L, D)
  if S == 0 or L == 0:
    return xs, jnp.zeros((S, L), xs.dtype)
  if prompt is not None:
    all_xs = jnp.concatenate([jnp.broadcast_to(prompt[0], (S, P, D)), xs], axis=1)
    init_ys = jnp.concatenate([jnp.broadcast_to(prompt[1], (S, P)),
                               jnp.zeros((S, L))], axis=1)
  else:
    all_xs, init_ys = xs, jnp.zeros((S, L))

  def pair(ys, inputs):
    k, y_key = inputs
    raw = model.apply(params, all_xs, ys)[:, P + k]  # causal: ignores ys[:, P+k:]
    return ys.at[:, P + k].set(head.sample(y_key, raw)), None

  ys, _ = lax.scan(pair, init_ys, (jnp.arange(L), y_keys))
  return xs, ys[:, P:]


def _sample_prior(params, key, *, sampler, net, num_samples, num_pairs, batch_size):
  """OLS task estimates [S, D] of rollouts drawn in batches of `batch_size`."""
  batches = -(-num_samples // batch_size)
  keys = jax.random.split(key, batches)

  def one(k):
    xs, ys = sampler(params, net, k, batch_size, num_pairs)
    return ols_fit(xs, ys)

  tasks = lax.map(one, keys).reshape(batches * batch_size, net.config.D)
  return tasks[:num_samples]


def make_prior_sampler(config: ml_collections.ConfigDict, num_samples: int,
                       num_pairs: int, *, batch_size: int = 1024, cached: bool = True,
                       net: Optional[Network] = None):
  """A jitted f(params, key) -> task samples [S, D] from the implicit prior.

  Rollouts run `batch_size` at a time (memory: the cache holds
  batch_size · 2K · E floats per layer for keys and for values).

  Raises:
    TypeError: num_samples, num_pairs or batch_size is not an int.
    ValueError: one of them is below 1, num_pairs exceeds config.K, or the head
      is not probabilistic.
  """
  caller = "predictive.make_prior_sampler"
  num_samples = arguments.count(caller, "num_samples", num_samples, minimum=1)
  num_pairs = arguments.count(caller, "num_pairs", num_pairs, minimum=1)
  batch_size = arguments.count(caller, "batch_size", batch_size, minimum=1)
  _check_length(caller, config, num_pairs, 0)
  sampler = rollout if cached else rollout_full_recompute
  batch_size = min(batch_size, num_samples)
  return jax.jit(functools.partial(_sample_prior, sampler=sampler,
                                   net=network(config) if net is None else net,
                                   num_samples=num_samples, num_pairs=num_pairs,
                                   batch_size=batch_size))


def _as_float(x) -> jax.Array:
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


@functools.partial(jax.jit, static_argnames=("rcond",))
def ols_fit(xs: jax.Array, ys: jax.Array, rcond=None) -> jax.Array:
  """Least-squares task estimate per sequence.

  t̂_s = argmin_t ‖X_s t − y_s‖², computed through the thin SVD
  X_s = U Σ Vᵀ as t̂_s = V Σ⁺ Uᵀ y_s (i.e. pinv(X_s) y_s).  With full column
  rank (K >= D and the x's in general position) this is (XᵀX)⁻¹Xᵀy.  When
  K < D (or X is otherwise rank deficient) the minimiser is not unique and
  the minimum-norm one is returned: it interpolates the data and lies in the
  row space of X_s, so it is the projection of any exact task onto that
  span, shrunk towards 0 relative to the true task.  Samples of t̂ from
  short contexts are therefore concentrated on low-norm tasks, not on the
  prior.

  Singular values below rcond · σ_max are treated as 0 (jnp.linalg.lstsq, one
  call per sequence); the default rcond is eps · max(K, D), as in numpy.

  The sequences are fitted one after another (lax.map), not as one batched
  LAPACK call: jaxlib's batched SVD splits its batch over XLA's intra-op
  thread pool and blocks its own pool thread until the pieces are done, so two
  such calls at once (one per device of a 2-device CPU mesh, as the prior
  measurements run) hold both threads of a 2-core machine waiting for work no
  thread is left to run, and the process hangs with no CPU use (as the ridge
  solves did, baselines.solve_spd).  5000 fits: 50 ms, against 34 ms batched.

  Args:
    xs: inputs [S, K, D].
    ys: targets [S, K].
    rcond: relative cutoff for small singular values, or None.

  Returns:
    Task estimates [S, D].

  Raises:
    TypeError, ValueError: xs or ys is not an array of these shapes.
  """
  dims = {}
  xs = _as_float(arguments.array("predictive.ols_fit", "xs", xs, "S K D", dims))
  ys = _as_float(arguments.array("predictive.ols_fit", "ys", ys, "S K", dims))
  return jax.lax.map(lambda xy: jnp.linalg.lstsq(*xy, rcond=rcond)[0], (xs, ys))


@functools.partial(jax.jit, static_argnames=("n", "D"))
def sample_ridge_prior(key: jax.Array, n: int, D: int) -> jax.Array:
  """n draws from the ridge (M = ∞) task prior N(0, I_D).  Returns [n, D].

  Raises:
    TypeError, ValueError: key is not one PRNG key, n not an int >= 0 or D not
      an int >= 1.
  """
  caller = "predictive.sample_ridge_prior"
  arguments.key(caller, "key", key)
  n, D = arguments.count(caller, "n", n), arguments.count(caller, "D", D, minimum=1)
  return jax.random.normal(key, (n, D))


@functools.partial(jax.jit, static_argnames=("n",))
def sample_dmmse_prior(key: jax.Array, tasks: jax.Array, n: int, num_tasks=None
                       ) -> jax.Array:
  """n draws uniformly with replacement from the task set tasks [M, D].

  This is the dMMSE prior: the empirical distribution of the training tasks.
  num_tasks: draw from tasks[:num_tasks] only (a run group's padded task set).

  Returns:
    [n, D].

  Raises:
    TypeError, ValueError: key is not one PRNG key, tasks not an array [M, D]
      with M >= 1, n not an int >= 0 or num_tasks not a scalar.
  """
  caller = "predictive.sample_dmmse_prior"
  arguments.key(caller, "key", key)
  tasks = arguments.array(caller, "tasks", tasks, "M D")
  if tasks.shape[0] == 0:
    raise ValueError(f"{caller}: tasks must hold M >= 1 tasks; got {tasks.shape} (the "
                     "empty set stands for M = ∞, whose prior sample_ridge_prior draws).")
  n = arguments.count(caller, "n", n)
  if num_tasks is not None and jnp.ndim(num_tasks) != 0:
    raise ValueError(f"{caller}: num_tasks must be a scalar (or None); got "
                     f"{arguments.describe(num_tasks)}.")
  M = tasks.shape[0] if num_tasks is None else num_tasks
  index = jax.random.randint(key, (n,), 0, M)
  return tasks[index]
