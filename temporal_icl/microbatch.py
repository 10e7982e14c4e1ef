"""The loss and gradient of a batch, computed over microbatches that fit in cache.

Shape letters: B batch, m microbatches, B/m sequences each.

A training step needs the loss and gradient of the mean over a batch.  Mean
losses of equal parts average to the mean of the whole, so the same numbers
(to float rounding) come from a `lax.scan` over m equal microbatches that sums
their losses and gradients and divides by m.

Why: XLA's CPU backend spends most of a large step moving activations through
memory, not multiplying them.  At paper size (B = 256 sequences of 32 tokens,
E = 128) one activation is [8192, 128] floats, 4 MiB; layer norm, softmax, the
residual adds and the split of the Q/K/V columns each stream several of them
through a core's 1 MiB L2 cache.  Split into 8 microbatches of 32 sequences,
an activation is 512 KiB, and the same gradient took 0.6× the time
(2026-12-02, AVX-512 machine, 2 cores; benchmarks/train_throughput.py's
docstring).  Smaller parts cost more again: the matmuls get too small.  At the
demo's size (64 × 32 tokens, E = 64, 512 KiB) one part is fastest.

On GPUs and TPUs the whole batch is one microbatch: they have no such cache,
and smaller matmuls only waste them.
"""

from typing import Callable, Tuple

import jax
import jax.numpy as jnp

# The most bytes of one [tokens, E] float32 activation of a microbatch on CPU.
CPU_ACTIVATION_BYTES = 1024 * 1024


def count(batch_size: int, tokens_per_sequence: int, embed_size: int,
          group_size: int = 1, platform: str = "cpu") -> int:
  """m, the number of equal microbatches a batch of `batch_size` sequences is cut into.

  The fewest parts (a divisor of batch_size) whose [tokens, E] activation,
  times the runs of a group trained together (`group_size`, vmapped), fits in
  CPU_ACTIVATION_BYTES; 1 on any platform other than 'cpu'.
  """
  if platform != "cpu":
    return 1
  per_sequence = tokens_per_sequence * embed_size * 4 * group_size
  for parts in range(1, batch_size + 1):
    if batch_size % parts == 0 and (batch_size // parts) * per_sequence <= CPU_ACTIVATION_BYTES:
      return parts
  return batch_size


def value_and_grad(loss: Callable, params, xs: jax.Array, ys: jax.Array,
                   parts: int) -> Tuple[jax.Array, object]:
  """(loss, ∂loss/∂params) of `loss(params, xs, ys)`, a mean over the batch.

  xs [B, ...], ys [B, ...] are cut along B into `parts` equal microbatches
  (parts must divide B), whose losses and gradients are averaged in a scan.
  With parts = 1 this is jax.value_and_grad(loss)(params, xs, ys).
  """
  grad_fn = jax.value_and_grad(loss)
  if parts == 1:
    return grad_fn(params, xs, ys)
  batch = xs.shape[0]
  if batch % parts:
    raise ValueError(f"{parts} microbatches do not divide a batch of {batch}.")
  split = lambda a: a.reshape(parts, batch // parts, *a.shape[1:])

  def add(total, part):
    return jax.tree.map(jnp.add, total, grad_fn(params, *part)), None

  parts_xs, parts_ys = split(xs), split(ys)
  # Zeros of the type grad_fn returns: under shard_map that type also names the
  # mesh axes its values vary over, which a scan's carry must keep.
  zero = jax.tree.map(jnp.zeros_like, jax.eval_shape(grad_fn, params, parts_xs[0], parts_ys[0]))
  total, _ = jax.lax.scan(add, zero, (parts_xs, parts_ys))
  return jax.tree.map(lambda a: a / parts, total)
