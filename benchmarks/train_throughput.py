r"""Training throughput at paper and demo size, with evaluation on and off.

  python -m benchmarks.train_throughput [--paper_steps=8] [--demo_steps=512]

Prints, for each size, steps/s without measurements, steps/s with evaluation every
`eval_every` steps, their ratio (the evaluation overhead), and the model's FLOP/s
as a fraction of a large float32 matmul's FLOP/s measured in the same run.
"""

import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P

from configs import base
from configs import demo
from temporal_icl import evaluation
from temporal_icl import train

_PAPER_STEPS = flags.DEFINE_integer("paper_steps", 8, "Timed steps at paper size.")
_DEMO_STEPS = flags.DEFINE_integer("demo_steps", 512, "Timed steps at demo size.")


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


def steps_per_sec(config, num_steps: int, with_eval: bool) -> float:
  train._parse_gin(config)
  exp = train.build(config)
  mesh = train.make_mesh()
  state = jax.device_put(train.init_state(exp), NamedSharding(mesh, P()))
  multi_step = train.make_multi_step(exp, mesh)
  evaluator = evaluation.Evaluator(config, exp.model.apply, exp.head,
                                   train.stream_key(config.seed, "test_set"))
  chunk = config.eval_every if with_eval else num_steps

  def run(state, steps):
    done = 0
    while done < steps:
      n = min(chunk, steps - done)
      state, _, _ = multi_step(state, jnp.asarray(n, jnp.int32))
      done += n
      if with_eval:
        xs, ys = train.training_batch(exp, state.schedule, done)
        evaluator(state.params, train.training_tasks(exp, state.schedule), xs, ys)
    jax.block_until_ready(state)
    return state

  state = run(state, chunk)  # compile everything
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
    steps = max(steps // config.eval_every, 1) * config.eval_every
    plain = steps_per_sec(config, steps, with_eval=False)
    evald = steps_per_sec(config, steps, with_eval=True)
    flops = step_flops(config) * plain
    print(f"{name:6s} batch={config.batch_size} K={config.K} D={config.D} "
          f"{config.model.num_blocks}x{config.model.embed_size}: "
          f"{plain:8.2f} steps/s plain, {evald:8.2f} steps/s with eval every "
          f"{config.eval_every}; eval overhead x{plain / evald:.3f}; "
          f"model {flops / 1e9:.1f} GFLOP/s = {flops / peak:.2f} of matmul peak")


if __name__ == "__main__":
  app.run(main)
