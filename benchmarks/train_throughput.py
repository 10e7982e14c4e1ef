r"""Training throughput at paper and demo size, and the per-sequence cost by batch size.

  python -m benchmarks.train_throughput [--paper_steps=64] [--demo_steps=512] \
      [--batch_sizes=32,64,96,128,256] [--batch_steps=64]

Times exactly the given number of steps at each size (after a compile run) and
prints steps/s without measurements, steps/s with evaluation after every
`eval_steps` ('every:N') of those steps, their ratio (the evaluation overhead), and the
model's FLOP/s as a fraction of a float32 matmul's FLOP/s measured in the same
run.  Fewer timed steps than N time no evaluation, so the overhead is
then reported as not measured.

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
"""

import os
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
from temporal_icl import experiment
from temporal_icl import groups
from temporal_icl import measurements
from temporal_icl import train

_PAPER_STEPS = flags.DEFINE_integer(
    "paper_steps", 64, "Steps timed at paper size (exactly; evaluation every 64 there).")
_DEMO_STEPS = flags.DEFINE_integer(
    "demo_steps", 512, "Steps timed at demo size (exactly; evaluation every 64 there).")
_BATCH_SIZES = flags.DEFINE_list(
    "batch_sizes", ["32", "64", "96", "128", "256"],
    "Demo-size batches whose per-sequence cost is timed on one core ([] to skip).")
_BATCH_STEPS = flags.DEFINE_integer("batch_steps", 64, "Steps timed per batch size.")
_ONE_CORE = flags.DEFINE_integer("one_core_batch", 0, "Internal: time this batch here.")


def matmul_flops_per_sec(n: int = 2048, repeats: int = 5) -> float:
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n))
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  t0 = time.perf_counter()
  for _ in range(repeats):
    f(a).block_until_ready()
  return repeats * 2 * n**3 / (time.perf_counter() - t0)


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


def steps_per_sec(config, num_steps: int, with_eval: bool) -> float:
  """Training steps/s of one run through the training loop's own step (a group of one)."""
  experiment.parse_gin(config)
  exp = experiment.build(config)
  mesh = train.make_mesh()
  sharding = NamedSharding(mesh, P())
  state = jax.device_put(groups.stack([experiment.init_state(exp)]), sharding)
  run = jax.device_put(groups.stack([experiment.run_data(config)]), sharding)
  multi_step = train.make_multi_step(exp, mesh, 1)
  evaluate = jax.jit(measurements.module("evaluation").build(measurements.Context(
      config, exp, [measurements.RunContext(config, "", None, 0, None)], True, None)).compute)
  chunk = eval_period(config) if with_eval else num_steps

  def run_steps(state, steps):
    done = 0
    while done < steps:
      n = min(chunk, steps - done)
      state, _, last = multi_step(state, run, jnp.asarray(n, jnp.int32), jnp.zeros((1,)))
      done += n
      if with_eval:
        jax.block_until_ready(evaluate(jnp.asarray(done, jnp.int32), groups.take(state, 0),
                                       groups.take(run, 0), last[0]))
    jax.block_until_ready(state)
    return state

  state = run_steps(state, chunk if with_eval else 1)  # compile everything
  t0 = time.perf_counter()
  run_steps(state, num_steps)
  return num_steps / (time.perf_counter() - t0)


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
    print(1.0 / steps_per_sec(config, _BATCH_STEPS.value, with_eval=False))
    return
  peak = matmul_flops_per_sec()
  print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}; "
        f"float32 2048² matmul: {peak / 1e9:.1f} GFLOP/s")
  paper = base.get_config()
  for name, config, steps in (("paper", paper, _PAPER_STEPS.value),
                              ("demo", demo.get_config(), _DEMO_STEPS.value)):
    if steps < 1:
      continue
    plain = steps_per_sec(config, steps, with_eval=False)
    if steps >= eval_period(config):
      evald = steps_per_sec(config, steps, with_eval=True)
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
