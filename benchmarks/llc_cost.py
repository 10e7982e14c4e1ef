r"""Cost of one LLC estimate (SGLD, `temporal_icl.measurements.methods.sgld`) at demo and
paper size.

  python -m benchmarks.llc_cost [--repeats=2] [--sizes=demo,paper]

Uses the config's `llc` block as it stands (chains × draws SGLD steps on
minibatches of `llc.batch_size` sequences), at the model's initial parameters.
Prints the wall time of one estimate (compile excluded), the SGLD steps it ran,
and its cost measured in training steps of the same model, timed in the same run.
"""

import time

from absl import app
from absl import flags
import jax

from configs import base
from configs import demo
from temporal_icl.core import experiment
from temporal_icl import measurements
from temporal_icl.measurements.methods import sgld
from temporal_icl.training import validation

_REPEATS = flags.DEFINE_integer("repeats", 2, "Timed estimates per size.")
_SIZES = flags.DEFINE_list("sizes", ["demo", "paper"], "Which sizes to time.")
_TRAIN_STEPS = flags.DEFINE_integer("train_steps", 64, "Training steps timed per size.")


def _timed(fn, repeats):
  fn(0)  # compile
  t0 = time.perf_counter()
  for i in range(repeats):
    fn(i + 1)
  return (time.perf_counter() - t0) / repeats


def llc_seconds(config, repeats):
  config.llc_steps = "0"  # on, for measure_once
  experiment.parse_gin(config)
  exp = experiment.build(config)
  state = experiment.init_state(exp)

  def estimate(i):
    measurements.measure_once("llc", config, exp, state._replace(step=jax.numpy.int32(i)))

  return _timed(estimate, repeats), sgld.SGLDConfig.from_config(
      {k: v for k, v in config.llc.items() if k != "dataset_size"})


def train_step_seconds(config, num_steps):
  from benchmarks import train_throughput
  return 1.0 / train_throughput.steps_per_sec(config, num_steps, with_eval=False)


def main(argv):
  del argv
  sizes = {"demo": demo.get_config, "paper": base.get_config}
  from benchmarks import train_throughput  # pylint: disable=g-import-not-at-top
  peak = train_throughput.matmul_flops_per_sec()
  print(f"device: {jax.devices()[0].platform} x{jax.device_count()}; float32 2048² "
        f"matmul {peak / 1e9:.1f} GFLOP/s (same run)")
  for name in _SIZES.value:
    config = sizes[name]()
    validation.validate(config)
    seconds, sgld = llc_seconds(config, _REPEATS.value)
    sgld_steps = sgld.num_chains * (sgld.num_burnin_steps + sgld.num_draws)
    step_seconds = train_step_seconds(config, _TRAIN_STEPS.value)
    print(f"{name:6s} {config.model.num_blocks}x{config.model.embed_size} "
          f"batch={config.llc.batch_size}: one LLC estimate {seconds:7.2f} s "
          f"({sgld.num_chains} chains x {sgld.num_burnin_steps + sgld.num_draws} SGLD steps "
          f"= {sgld_steps}); = {seconds / step_seconds:7.1f} training steps "
          f"of batch {config.batch_size}")


if __name__ == "__main__":
  app.run(main)
