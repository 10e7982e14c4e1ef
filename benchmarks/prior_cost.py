r"""Cost of one energy-distance measurement: KV-cached vs full-recompute sampler.

  python -m benchmarks.prior_cost [--num_samples=5000] [--repeats=2]

At paper size (8 blocks, width 128, K=16, D=8, gaussian head) one measurement
samples `num_samples` rollouts of K pairs, fits OLS to each and computes two
energy distances.  Prints the wall time of each sampler (compile excluded), their
ratio, and the temporary memory XLA plans for `energy.energy_distance` at
n = m = num_samples against a naive all-pairs version (compiled, never run).
"""

import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

from configs import base
from benchmarks import train_throughput
from temporal_icl.core import experiment
from temporal_icl.measurements.methods import energy
from temporal_icl.measurements.methods import predictive

_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 5000, "PMC rollouts per measurement.")
_REPEATS = flags.DEFINE_integer("repeats", 2, "Timed measurements per sampler.")


def measurement_seconds(config, params, num_samples, cached, repeats):
  sampler = predictive.make_prior_sampler(config, num_samples, config.K, cached=cached)
  reference = predictive.sample_ridge_prior(jax.random.PRNGKey(1), num_samples, config.D)
  distance = jax.jit(energy.energy_distance)

  def measure(key):
    return distance(sampler(params, key), reference).block_until_ready()

  measure(jax.random.PRNGKey(0))  # compile
  t0 = time.perf_counter()
  for i in range(repeats):
    measure(jax.random.PRNGKey(i + 1))
  return (time.perf_counter() - t0) / repeats


def naive_energy_distance(a, b):
  """All n·m·D differences at once: the memory the blocked version avoids."""
  d = lambda u, v: jnp.linalg.norm(u[:, None] - v[None], axis=-1)
  n, m = a.shape[0], b.shape[0]
  return (2 * d(a, b).mean() - d(a, a).sum() / (n * (n - 1))
          - d(b, b).sum() / (m * (m - 1)))


def temp_bytes(fn, n, D):
  shape = jax.ShapeDtypeStruct((n, D), jnp.float32)
  analysis = jax.jit(fn).lower(shape, shape).compile().memory_analysis()
  return analysis.temp_size_in_bytes


def main(argv):
  del argv
  config = base.get_config()
  config.head = "gaussian"
  experiment.parse_gin(config)
  exp = experiment.build(config)
  params = experiment.init_state(exp).params
  S = _NUM_SAMPLES.value
  peak = train_throughput.matmul_flops_per_sec()
  print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}; float32 2048² "
        f"matmul {peak / 1e9:.1f} GFLOP/s (same run); {S} rollouts of K={config.K} pairs, D={config.D}, "
        f"{config.model.num_blocks} blocks of width {config.model.embed_size}")
  cached = measurement_seconds(config, params, S, True, _REPEATS.value)
  full = measurement_seconds(config, params, S, False, _REPEATS.value)
  print(f"one energy-distance measurement: cached {cached:.2f} s, full recompute "
        f"{full:.2f} s; speed-up x{full / cached:.1f}")
  blocked = temp_bytes(energy.energy_distance, S, config.D)
  naive = temp_bytes(naive_energy_distance, S, config.D)
  print(f"energy_distance temporaries at n = m = {S}, D = {config.D}: blocked "
        f"{blocked / 2**20:.2f} MiB, naive {naive / 2**20:.0f} MiB; ratio "
        f"x{naive / max(blocked, 1):.0f}")


if __name__ == "__main__":
  app.run(main)
