"""Local learning coefficient (LLC) estimated by SGLD, for arbitrary parameter pytrees.

The LLC λ(w*) of a local minimum w* of the loss measures its effective
dimension: λ = d/2 for a regular (non-degenerate) minimum of d parameters and
less at singular minima.  It is estimated (Lau et al., "The local learning
coefficient", 2023) as

  λ̂(w*) = nβ · (E_w[L_n(w)] − L_n(w*)),

the expectation over the localized tempered posterior

  p(w) ∝ exp(−nβ · L_n(w) − (γ/2) ‖w − w*‖²),

where L_n is the mean loss over a fixed dataset of n examples, nβ the inverse
temperature times n, and γ the strength of the localizing Gaussian around w*.
The posterior is sampled by stochastic-gradient Langevin dynamics, starting at
w* in every chain:

  w ← w − (ε/2) · (nβ · ∇L_m(w) + γ (w − w*)) + √ε · ξ,   ξ ~ N(0, I),

(devinterp's SGLD with lr = ε, localization = γ, nbeta = nβ)

with L_m the mean loss on a minibatch of m examples.  Minibatches are the
consecutive slices of a fresh random permutation of the n examples per epoch
(sampling without replacement within an epoch), independently per chain.  Each
chain first takes `num_burnin_steps` SGLD steps whose losses are discarded, then
`num_draws` steps, each one draw (devinterp's num_burnin_steps and num_draws with
one step between draws).  Following devinterp, E_w[L_n(w)] is estimated by the
minibatch losses L_m(w_t) along the chains, L_m(w_t) evaluated on the batch of
step t at the parameters *before* that step (so with no burn-in, draw 0 is at w*).  L_m(w_t) is an unbiased
estimate of L_n(w_t) because the batch is a uniformly random subset.  L_n(w*)
is computed on the whole dataset, in chunks of m examples.

nβ convention: by default nβ = m / log m with m the minibatch size (the
devinterp default, β* = 1/log n with n replaced by the number of examples
entering each gradient).  It is a convention: λ̂ is only comparable between
runs with the same nβ, γ and ε.  For a quadratic minimum with Hessian H the
exact posterior value is ½ tr(nβH (nβH + γI)⁻¹), so γ must be small next to
nβ times the Hessian's eigenvalues, and ε small next to 2 / (nβ λ_max(H) + γ),
for λ̂ to approach d/2.

Failure signal: w* must be a local minimum of L_n.  If chains reach losses
below L_n(w*) (w* not a minimum, or ε so large that the chain jumps to another
basin) the estimate is meaningless and typically small or negative.
`LLCResult.loss_below_init_fraction`, the fraction of post-burn-in draws whose
minibatch loss is below L_n(w*), flags this: it is near 0 for a well-resolved
minimum (minibatch noise alone makes it slightly positive) and near 1 when the
chains descend.

Shape letters: C chains, T draws per chain (num_draws), B burn-in steps
(num_burnin_steps), n dataset examples, m minibatch size.
"""

import dataclasses
import math
import types
from typing import Any, Callable, List, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp

from temporal_icl.common import arguments

PyTree = Any
LossFn = Callable[[PyTree, PyTree], jax.Array]


@dataclasses.dataclass(frozen=True)
class SGLDConfig:
  """Hyperparameters of the SGLD LLC estimator (validated on construction).

  Attributes:
    epsilon: SGLD step size ε > 0 (devinterp: lr).
    localization: strength γ >= 0 of the pull towards w* (devinterp: localization).
    nbeta: inverse temperature times n, nβ > 0; None means m / log m.
    num_chains: independent chains C >= 1, run in parallel.
    num_burnin_steps: SGLD steps B >= 0 before the draws, their losses discarded.
    num_draws: SGLD steps T >= 1 after the burn-in, each one draw.
    batch_size: minibatch size m >= 1 (>= 2 when nbeta is None).

  Errors name the field as `llc.<field>=<value>`, so that config validation
  can report them as they are (config.llc holds the same names).
  """
  epsilon: float = 1e-4
  localization: float = 100.0
  nbeta: Optional[float] = None
  num_chains: int = 4
  num_burnin_steps: int = 0
  num_draws: int = 200
  batch_size: int = 256

  @classmethod
  def problems_of(cls, fields: Mapping[str, Any]) -> List[str]:
    """One sentence per invalid or unknown field of `fields` (the rest default)."""
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - set(defaults))
    if unknown:
      return [f"llc has unknown fields {unknown}; expected a subset of {sorted(defaults)}."]
    s = types.SimpleNamespace(**{**defaults, **fields})
    found = []
    if not s.epsilon > 0:
      found.append(f"llc.epsilon={s.epsilon} must be > 0.")
    if not s.localization >= 0:
      found.append(f"llc.localization={s.localization} must be >= 0 (0: no pull).")
    if s.nbeta is not None and not s.nbeta > 0:
      found.append(f"llc.nbeta={s.nbeta} must be > 0, or None for m / log m.")
    for field in ("num_chains", "num_draws", "batch_size"):
      if getattr(s, field) < 1:
        found.append(f"llc.{field}={getattr(s, field)} must be >= 1.")
    if s.num_burnin_steps < 0:
      found.append(f"llc.num_burnin_steps={s.num_burnin_steps} must be >= 0.")
    if s.nbeta is None and s.batch_size == 1:
      found.append("llc.batch_size=1 cannot set nβ = m / log m (log 1 = 0); use "
                   "batch_size >= 2 or give llc.nbeta.")
    return found

  def __post_init__(self):
    found = self.problems_of(dataclasses.asdict(self))
    if found:
      raise ValueError(" ".join(found))

  @classmethod
  def from_config(cls, cfg) -> "SGLDConfig":
    """From a mapping (e.g. config.llc) with a subset of the field names.

    Missing fields take the defaults; unknown or invalid fields raise ValueError.
    """
    found = cls.problems_of(dict(cfg.items()))
    if found:
      raise ValueError(" ".join(found))
    return cls(**dict(cfg.items()))

  @property
  def effective_nbeta(self) -> float:
    """nβ: `nbeta`, or m / log m when it is None."""
    if self.nbeta is not None:
      return float(self.nbeta)
    return self.batch_size / math.log(self.batch_size)


class LLCResult(NamedTuple):
  """Output of the estimator (C = num_chains, T = num_draws).

  Attributes:
    mean: [] mean over chains of the per-chain λ̂.
    std: [] sample standard deviation (ddof = 1) over chains; 0 for one chain.
    per_chain: [C] nβ · (mean post-burn-in minibatch loss − L_n(w*)) per chain.
    loss_traces: [C, B + T] minibatch loss L_m(w_t) at every step, burn-in included.
    init_loss: [] L_n(w*), the loss over the whole dataset.
    loss_below_init_fraction: [] fraction of post-burn-in draws (over all
      chains) with loss below init_loss; near 1 means the estimate is invalid.
  """
  mean: jax.Array
  std: jax.Array
  per_chain: jax.Array
  loss_traces: jax.Array
  init_loss: jax.Array
  loss_below_init_fraction: jax.Array


def dataset_size(dataset: PyTree) -> int:
  """n, the common leading axis of the dataset's array leaves.

  Raises:
    TypeError: a leaf is not an array (a string, say).
    ValueError: there are no leaves, a leaf is a scalar (Python lists and
      tuples are pytree nodes, so a list of numbers is a set of scalars), or the
      leaves disagree on n.
  """
  leaves = jax.tree_util.tree_leaves_with_path(dataset)
  if not leaves:
    raise ValueError("llc dataset has no arrays.")
  sizes = {}
  for path, leaf in leaves:
    where = "dataset" + jax.tree_util.keystr(path)
    if isinstance(leaf, (int, float, complex)):
      raise ValueError(
          f"llc dataset arrays need a leading example axis; {where} is a scalar (a Python "
          f"{type(leaf).__name__}: lists and tuples are pytree nodes, so pass arrays).")
    if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
      raise TypeError(f"llc dataset leaves must be arrays; {where} is "
                      f"{arguments.describe(leaf)}.")
    if not leaf.shape:
      raise ValueError(f"llc dataset arrays need a leading example axis; {where} is a "
                       "scalar of shape ().")
    sizes[where] = leaf.shape[0]
  if len(set(sizes.values())) != 1:
    listed = ", ".join(f"{where} has {size}" for where, size in sizes.items())
    raise ValueError(f"llc dataset arrays disagree on the example axis n: {listed}.")
  return next(iter(sizes.values()))


def _take(dataset: PyTree, indices: jax.Array) -> PyTree:
  return jax.tree.map(lambda leaf: leaf[indices], dataset)


def full_loss(loss_fn: LossFn, params: PyTree, dataset: PyTree, chunk_size: int) -> jax.Array:
  """L_n(params) over the whole dataset, in chunks of `chunk_size` examples.

  loss_fn must be a mean of per-example losses: chunk means are recombined
  weighted by chunk size.  Returns a scalar.

  Raises:
    TypeError, ValueError: chunk_size is not an int >= 1, or as `dataset_size`.
  """
  chunk_size = arguments.count("sgld.full_loss", "chunk_size", chunk_size, minimum=1)
  n = dataset_size(dataset)
  num_full, remainder = divmod(n, chunk_size)
  total = 0.0
  if num_full:
    chunks = jax.tree.map(
        lambda leaf: leaf[:num_full * chunk_size].reshape(
            (num_full, chunk_size) + leaf.shape[1:]), dataset)
    chunk_means = jax.lax.map(lambda chunk: loss_fn(params, chunk), chunks)  # [num_full]
    total += jnp.sum(chunk_means) * chunk_size
  if remainder:
    rest = jax.tree.map(lambda leaf: leaf[num_full * chunk_size:], dataset)
    total += loss_fn(params, rest) * remainder
  return total / n


def _chain(loss_fn: LossFn, sgld: SGLDConfig, nbeta: float, params_star: PyTree,
           dataset: PyTree, n: int, key: jax.Array) -> jax.Array:
  """One SGLD chain from params_star.  Returns its loss trace [B + T]."""
  m = sgld.batch_size
  batches_per_epoch = n // m
  num_full_epochs, remainder = divmod(sgld.num_burnin_steps + sgld.num_draws,
                                      batches_per_epoch)
  perm_key, noise_key = jax.random.split(key)
  treedef = jax.tree_util.tree_structure(params_star)
  grad_fn = jax.value_and_grad(loss_fn)

  def step(carry, batch_indices):
    params, t = carry
    loss, grads = grad_fn(params, _take(dataset, batch_indices))
    leaf_keys = jax.random.split(jax.random.fold_in(noise_key, t), treedef.num_leaves)
    noise = jax.tree_util.tree_unflatten(treedef, [
        jax.random.normal(k, p.shape, p.dtype)
        for k, p in zip(leaf_keys, jax.tree_util.tree_leaves(params))])

    def update(p, g, p0, xi):
      drift = nbeta * g + sgld.localization * (p - p0)
      return (p - 0.5 * sgld.epsilon * drift + math.sqrt(sgld.epsilon) * xi).astype(p.dtype)

    params = jax.tree.map(update, params, grads, params_star, noise)
    return (params, t + 1), loss

  def epoch_batches(epoch, num_batches):
    """[num_batches, m] indices: slices of this epoch's permutation."""
    perm = jax.random.permutation(jax.random.fold_in(perm_key, epoch), n)
    return perm[:num_batches * m].reshape(num_batches, m)

  def run_epoch(carry, epoch):
    return jax.lax.scan(step, carry, epoch_batches(epoch, batches_per_epoch))

  carry = (params_star, jnp.zeros((), jnp.int32))
  traces = []
  if num_full_epochs:
    carry, trace = jax.lax.scan(run_epoch, carry, jnp.arange(num_full_epochs))
    traces.append(trace.reshape(-1))
  if remainder:
    carry, trace = jax.lax.scan(step, carry, epoch_batches(num_full_epochs, remainder))
    traces.append(trace)
  return jnp.concatenate(traces)


def make_llc_estimator(loss_fn: LossFn, sgld: SGLDConfig
                       ) -> Callable[[PyTree, PyTree, jax.Array], LLCResult]:
  """Builds the LLC estimator for `loss_fn` with hyperparameters `sgld`.

  Args:
    loss_fn: loss_fn(params, batch) -> scalar mean loss over the batch; batch
      is a pytree of arrays with a leading example axis.  Must be a mean of
      per-example losses (L_n is computed in chunks).
    sgld: the SGLD hyperparameters.

  Returns:
    estimate(params_star, dataset, key) -> LLCResult, where params_star is the
    parameter pytree w*, dataset a pytree of arrays with leading axis n (the
    fixed dataset, n >= batch_size) and key a PRNG key.  The computation is
    jitted (one compile per parameter / dataset shape); the Python wrapper
    only checks the dataset shapes and the key.

  Raises:
    TypeError: loss_fn is not callable.
    ValueError: sgld is not an SGLDConfig.  `estimate` raises as
      `dataset_size`, ValueError when n < batch_size and TypeError or
      ValueError when key is not one PRNG key.
  """
  if not callable(loss_fn):
    raise TypeError("sgld.make_llc_estimator: loss_fn must be a function "
                    f"loss_fn(params, batch) -> scalar; got {arguments.describe(loss_fn)}.")
  if not isinstance(sgld, SGLDConfig):
    raise ValueError(f"sgld.make_llc_estimator: sgld must be an SGLDConfig, got "
                     f"{type(sgld).__name__}.")
  nbeta = sgld.effective_nbeta

  @jax.jit
  def _estimate(params_star, dataset, key):
    n = dataset_size(dataset)
    init_loss = full_loss(loss_fn, params_star, dataset, sgld.batch_size)
    chain_keys = jax.random.split(key, sgld.num_chains)
    traces = jax.vmap(
        lambda k: _chain(loss_fn, sgld, nbeta, params_star, dataset, n, k))(chain_keys)  # [C, B+T]
    kept = traces[:, sgld.num_burnin_steps:]  # [C, T]
    per_chain = nbeta * (jnp.mean(kept, axis=1) - init_loss)  # [C]
    std = (jnp.std(per_chain, ddof=1) if sgld.num_chains > 1
           else jnp.zeros((), per_chain.dtype))
    return LLCResult(
        mean=jnp.mean(per_chain),
        std=std,
        per_chain=per_chain,
        loss_traces=traces,
        init_loss=init_loss,
        loss_below_init_fraction=jnp.mean((kept < init_loss).astype(jnp.float32)),
    )

  def estimate(params_star: PyTree, dataset: PyTree, key: jax.Array) -> LLCResult:
    arguments.key("llc estimate", "key", key)
    n = dataset_size(dataset)
    if sgld.batch_size > n:
      raise ValueError(f"llc batch_size {sgld.batch_size} exceeds the dataset size n = {n}.")
    return _estimate(params_star, dataset, key)

  return estimate
