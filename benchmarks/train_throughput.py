r"""Training throughput at paper and demo size, with evaluation on and off.

  python -m benchmarks.train_throughput [--paper_steps=64] [--demo_steps=512]

Times exactly the given number of steps at each size (after a compile run) and
prints steps/s without measurements, steps/s with evaluation after every
`eval_steps` ('every:N') of those steps, their ratio (the evaluation overhead), and the
model's FLOP/s as a fraction of a float32 matmul's FLOP/s measured in the same
run.  Fewer timed steps than N time no evaluation, so the overhead is
then reported as not measured.
"""

import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P

from configs import base
from configs import demo
from temporal_icl import experiment
from temporal_icl import evaluation
from temporal_icl import train

_PAPER_STEPS = flags.DEFINE_integer(
    "paper_steps", 64, "Steps timed at paper size (exactly; evaluation every 64 there).")
_DEMO_STEPS = flags.DEFINE_integer(
    "demo_steps", 512, "Steps timed at demo size (exactly; evaluation every 64 there).")


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
  experiment.parse_gin(config)
  exp = experiment.build(config)
  mesh = train.make_mesh()
  state = jax.device_put(experiment.init_state(exp), NamedSharding(mesh, P()))
  multi_step = train.make_multi_step(exp, mesh)
  evaluator = evaluation.Evaluator(config, exp.model.apply, exp.head,
                                   experiment.stream_key(config.seed, "test_set"))
  chunk = eval_period(config) if with_eval else num_steps

  def run(state, steps):
    done = 0
    while done < steps:
      n = min(chunk, steps - done)
      state, _, _ = multi_step(state, jnp.asarray(n, jnp.int32), jnp.zeros(()))
      done += n
      if with_eval:
        xs, ys = experiment.training_batch(exp, state.schedule, done)
        evaluator(state.params, experiment.training_tasks(exp, state.schedule), xs, ys)
    jax.block_until_ready(state)
    return state

  state = run(state, chunk if with_eval else 1)  # compile everything
  t0 = time.perf_counter()
  run(state, num_steps)
  return num_steps / (time.perf_counter() - t0)


def main(argv):
  del argv
  peak = matmul_flops_per_sec()
  print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}; "
        f"float32 2048² matmul: {peak / 1e9:.1f} GFLOP/s")
  paper = base.get_config()
  for name, config, steps in (("paper", paper, _PAPER_STEPS.value),
                              ("demo", demo.get_config(), _DEMO_STEPS.value)):
    if steps < 1:
      raise app.UsageError(f"--{name}_steps={steps} must be at least 1.")
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
          f"{peak / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
  app.run(main)
