"""The loss and gradient of a batch, computed over microbatches that fit in cache.

Shape letters: B batch, m microbatches, B/m sequences each.

A training step needs the loss and gradient of the mean over a batch.  Mean
losses of equal parts average to the mean of the whole, so the same numbers
(to float rounding) come from a `lax.scan` over m equal microbatches that sums
their losses and gradients and divides by m.

Why: on a CPU a large step spends much of its time moving activations through
memory rather than multiplying them.  At paper size (B = 256 sequences of 32
tokens, E = 128) one activation is [8192, 128] floats, 4 MiB; layer norm,
softmax, the residual adds and the split of the Q/K/V columns each stream
several of them past a core's 1 MiB L2 cache.  Measured 2026-12-02 (AVX-512
machine, 1 MiB L2 per core; medians of training steps interleaved in one
process):
- paper size, 2 cores: 4 parts of 2048 tokens ×0.74–0.84 the time of the whole
  batch; 8 parts of 1024 tokens ×0.99–1.15 the time of 4 parts;
- demo size (E = 64) at batch 128, 2 parts of 2048 tokens: ×0.82 on one core,
  ×0.86 on two; at batch 256 on one core, 4 parts ×0.73 and 2 parts ×0.91;
- demo size at batch 64 (2048 tokens): one part is fastest (2 parts ×1.28).
Every measurement is fastest at 2048 tokens a part, at E = 64 (512 KiB
activations) as at E = 128 (1 MiB), so the rule counts tokens, not bytes: with
fewer the matmuls get small, with more the activations leave the cache.  The
gain is largest when other tenants of the machine load its memory, and shrinks
to a few percent in quiet minutes.

On GPUs and TPUs the whole batch is one microbatch: they have no such cache,
and smaller matmuls only waste them.
"""

from typing import Callable, Tuple

import jax
import jax.numpy as jnp

# The most tokens (over all runs of a group) of one microbatch on CPU.
CPU_TOKENS = 2048


def count(batch_size: int, tokens_per_sequence: int, group_size: int = 1,
          platform: str = "cpu") -> int:
  """m, the number of equal microbatches a batch of `batch_size` sequences is cut into.

  The fewest parts (a divisor of batch_size) whose tokens, times the runs of a
  group trained together (`group_size`, vmapped), number at most CPU_TOKENS;
  1 on any platform other than 'cpu'.
  """
  if platform != "cpu":
    return 1
  per_sequence = tokens_per_sequence * group_size
  for parts in range(1, batch_size + 1):
    if batch_size % parts == 0 and (batch_size // parts) * per_sequence <= CPU_TOKENS:
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
