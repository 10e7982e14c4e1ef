r"""Training throughput at paper and demo size, and the per-sequence cost by batch size.

  python -m benchmarks.train_throughput [--paper_steps=128] [--demo_steps=512] \
      [--batch_sizes=32,64,96,128,256] [--batch_steps=64]

Times the given number of steps at each size twice (after a compile run), in
chunks of the evaluation period N ('every:N' of `eval_steps`) that alternate
between plain chunks and chunks followed by an evaluation, and prints the median
steps/s of each kind, their ratio (the evaluation overhead), and the model's
FLOP/s as a fraction of the best of 10 float32 2048² matmuls timed in the same
run.  Fewer timed steps than N time no evaluation, so the overhead is then
reported as not measured.

Then, on one core (a subprocess pinned to CPU 0), the demo-size step at each of
`--batch_sizes`: milliseconds per step, microseconds per sequence, and the cost per
sequence relative to batch 128.

What made the demo-size step fast (issue 23, measured 2026-12-01 on one core): the
network had applied its linear maps to [B, T, E] activations.  XLA's CPU backend
differentiates such a dot by contracting over both B and T, and lowers that to
layout copies ("copy_bitcast_fusion") that recompute the backward pass's
elementwise work once per consumer — 7.3 of the step's 19.4 ms at batch 64, plus
17 weight-gradient dots in Eigen (5.6 ms) — with a cost that jumped at batches
48–96 (460–580 µs per sequence against 266–350 elsewhere).  The network now keeps
the B·T tokens as one [N, E] matrix between embedding and head (reshaped only
inside attention) and applies Q, K and V as one [E, 3E] matmul: the same
parameters and values, 2-D matmuls whose gradients need no such copies.

What made it faster again (issue 23, 2026-12-02, AVX-512 machine, profile of the
paper-size step from a jax.profiler trace): after that change the step's
largest items besides the matmuls were the gradient of the Q/K/V slices (three
[N, E] slices transpose to pads of [N, 3E] that XLA adds: 12.6 ms of ~250 ms at
paper size, 0.37 of ~7 ms at demo size), the [B, T, H, E/H] -> [B, H, T, E/H]
transposes around attention's batched matmuls (22 ms at paper size), and
hk.LayerNorm's autodiff gradient (51 column and row reductions per step at paper
size, ~0.45 ms each).  The network now splits the Q/K/V columns with jnp.split
(whose gradient is one concatenation) into per-head [B, T, E/H] blocks, so each
head's two einsums need no transposes, and normalises with
temporal_icl/core/layer_norm.py, whose gradient is written in closed form.  Measured
in one process, the two networks' steps interleaved (nine 100-step timings each,
median): demo size 6.81 -> 5.58 ms (x0.82), paper size 239 -> 218–228 ms
(x0.91–0.95); trajectories move by float rounding only (README "Benchmarks").

What made the paper-size step fast (issue 23, 2026-12-02, later): a profile of
the step after those changes still had layer norm, softmax, the residual adds
and the Q/K/V split taking far longer than their arithmetic: each streams
[8192, 128] activations (4 MiB) past a core's 1 MiB L2 cache, and they slowed
most when other tenants of the machine loaded its memory.  The gradient is now
taken over microbatches of at most 2048 tokens, summed in a scan
(temporal_icl/training/microbatch.py; 4 parts of 64 sequences at paper size, one part
at the demo's size): ×0.74–0.84 the step time, paper size, in one process
(40 interleaved pairs over a minute: median ×0.84).  And on one device the gradient is no longer all-reduced: XLA's
CPU backend ran that pmean of one participant as a real collective (two tuple
all-reduces, ~5 ms of a ~200 ms step): ×0.96 paper, ×0.94 demo.
"""

import os
import statistics
import subprocess
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P

from configs import base
from configs import demo
from temporal_icl.core import experiment
from temporal_icl import measurements
from temporal_icl.training import groups
from temporal_icl.training import train

_PAPER_STEPS = flags.DEFINE_integer(
    "paper_steps", 128, "Steps timed at paper size, plain and again with evaluation.")
_DEMO_STEPS = flags.DEFINE_integer(
    "demo_steps", 512, "Steps timed at demo size, plain and again with evaluation.")
_BATCH_SIZES = flags.DEFINE_list(
    "batch_sizes", ["32", "64", "96", "128", "256"],
    "Demo-size batches whose per-sequence cost is timed on one core ([] to skip).")
_BATCH_STEPS = flags.DEFINE_integer("batch_steps", 64, "Steps timed per batch size.")
_ONE_CORE = flags.DEFINE_integer("one_core_batch", 0, "Internal: time this batch here.")


def matmul_flops_per_sec(n: int = 2048, repeats: int = 10) -> float:
  """The best of `repeats` timed float32 n×n matmuls, in FLOP/s.

  The best, not the mean: on a shared machine the mean of 5 moved between 320 and
  406 GFLOP/s within an hour (2026-12-02), and every fraction printed here is
  relative to it; the best is the machine's peak and moves less.
  """
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n))
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    f(a).block_until_ready()
    best = min(best, time.perf_counter() - t0)
  return 2 * n**3 / best


def step_flops(config) -> float:
  """≈ 6·params·tokens (forward + backward of the dense layers) plus attention."""
  e, mlp, blocks = config.model.embed_size, config.model.mlp_size, config.model.num_blocks
  params = blocks * (4 * e * e + 2 * e * mlp)
  tokens = config.batch_size * 2 * config.K
  attention = 3 * blocks * 4 * (2 * config.K) ** 2 * e * config.batch_size
  return 6 * params * tokens + attention


def eval_period(config) -> int:
  """N of the config's eval_steps = 'every:N' (what both benchmarked configs use)."""
  kind, _, n = config.eval_steps.partition(":")
  if kind != "every":
    raise ValueError(f"eval_steps={config.eval_steps!r}: this benchmark needs 'every:N'.")
  return int(n)


def steps_per_sec(config, num_steps: int, with_eval: bool = True):
  """Median training steps/s of one run without and with evaluation (a group of one).

  The steps go through the training loop's own step, in chunks of the evaluation
  period (all num_steps in one chunk when fewer), timed one by one and alternately
  without and with an evaluation after the chunk, so that both medians see the
  same moments of a shared machine.  Returns (plain, with evaluation); the second
  is None when num_steps is under one period or with_eval is False.
  """
  experiment.parse_gin(config)
  exp = experiment.build(config)
  mesh = train.make_mesh()
  sharding = NamedSharding(mesh, P())
  state = jax.device_put(groups.stack([experiment.init_state(exp)]), sharding)
  run = jax.device_put(groups.stack([experiment.run_data(config)]), sharding)
  multi_step = train.make_multi_step(exp, mesh, 1)
  evaluate = jax.jit(measurements.module("evaluation").build(measurements.Context(
      config, exp, [measurements.RunContext(config, "", 0, None)], True, None)).compute)
  chunk = min(eval_period(config), num_steps)
  with_eval = with_eval and num_steps >= eval_period(config)

  def timed_chunk(state, evaluated: bool):
    t0 = time.perf_counter()
    state, _, last = multi_step(state, run, jnp.asarray(chunk, jnp.int32), jnp.zeros((1,)))
    if evaluated:
      jax.block_until_ready(evaluate(state.step[0], groups.take(state, 0),
                                     groups.take(run, 0), groups.take(last, 0)))
    jax.block_until_ready(state)
    return state, chunk / (time.perf_counter() - t0)

  state, _ = timed_chunk(state, with_eval)  # compile everything
  plain, evaluated = [], []
  for _ in range(num_steps // chunk):
    state, rate = timed_chunk(state, False)
    plain.append(rate)
    if with_eval:
      state, rate = timed_chunk(state, True)
      evaluated.append(rate)
  return statistics.median(plain), (statistics.median(evaluated) if with_eval else None)


def one_core_cost(batch: int, steps: int) -> float:
  """Seconds per demo-size step at `batch`, in a subprocess pinned to one core."""
  command = [sys.executable, "-m", "benchmarks.train_throughput", f"--one_core_batch={batch}",
             f"--batch_steps={steps}"]
  out = subprocess.run(command, cwd=os.path.dirname(os.path.dirname(__file__)) or ".",
                       capture_output=True, text=True, check=True,
                       env=dict(os.environ, JAX_PLATFORMS="cpu"))
  return float(out.stdout.strip().splitlines()[-1])


def main(argv):
  del argv
  if _ONE_CORE.value:
    config = demo.get_config()
    config.batch_size = _ONE_CORE.value
    print(1.0 / steps_per_sec(config, _BATCH_STEPS.value, with_eval=False)[0])
    return
  peak = matmul_flops_per_sec()
  print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}; "
        f"float32 2048² matmul: {peak / 1e9:.1f} GFLOP/s")
  paper = base.get_config()
  for name, config, steps in (("paper", paper, _PAPER_STEPS.value),
                              ("demo", demo.get_config(), _DEMO_STEPS.value)):
    if steps < 1:
      continue
    plain, evald = steps_per_sec(config, steps)
    if evald is not None:
      with_eval = (f"{evald:8.2f} steps/s with eval every {eval_period(config)}; "
                   f"eval overhead x{plain / evald:.3f}")
    else:
      with_eval = (f"eval overhead not measured ({steps} steps < the eval period "
                   f"{eval_period(config)})")
    flops = step_flops(config) * plain
    print(f"{name:6s} {steps} steps, batch={config.batch_size} K={config.K} D={config.D} "
          f"{config.model.num_blocks}x{config.model.embed_size}: "
          f"{plain:8.2f} steps/s plain, {with_eval}; "
          f"model {flops / 1e9:.1f} GFLOP/s = {flops / peak:.2f} of the matmul's "
          f"{peak / 1e9:.1f} GFLOP/s", flush=True)
  batches = [int(b) for b in _BATCH_SIZES.value]
  if batches:
    if hasattr(os, "sched_setaffinity"):
      os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # children inherit it
    costs = {b: one_core_cost(b, _BATCH_STEPS.value) for b in batches}
    reference = costs.get(128)
    for b, seconds in costs.items():
      relative = f", x{(seconds / b) / (reference / 128):.2f} of batch 128's" if reference else ""
      print(f"one core, demo size, batch {b:4d}: {seconds * 1e3:6.1f} ms/step, "
            f"{seconds / b * 1e6:5.0f} µs per sequence{relative}", flush=True)


if __name__ == "__main__":
  app.run(main)
