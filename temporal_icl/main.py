r"""Trains one in-context regression transformer.

  python -m temporal_icl.main --config=configs/mala.py --config.M=8 \
      --workdir=runs/mala_M8

Rerunning the same command resumes from the latest checkpoint.  Summaries are
TensorBoard event files in the workdir: `tensorboard --logdir=<workdir>`.
"""

import logging as std_logging
import os
import signal
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from temporal_icl import train
from temporal_icl import validation
from temporal_icl import workdir as workdir_lib

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. configs/mala.py.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and summaries.")
_GIN_FILES = flags.DEFINE_multi_string(
    "gin_file", [], "Extra gin files binding structural model choices.")
_GIN_BINDINGS = flags.DEFINE_multi_string(
    "gin_bindings", [], "Extra gin bindings, e.g. \"activation.name='gelu'\".")
flags.mark_flags_as_required(["config", "workdir"])


def _quiet_library_info_logs():
  """Keeps orbax's per-save INFO lines out of the progress log (warnings stay)."""
  logging.get_absl_handler().addFilter(
      lambda record: record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname)


def main(argv):
  _quiet_library_info_logs()
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  if os.environ.get("JAX_COORDINATOR_ADDRESS"):
    jax.distributed.initialize()  # one process per host; see README "Multi-host"
  config = _CONFIG.value
  with config.unlocked():
    config.gin_files = tuple(config.gin_files) + tuple(_GIN_FILES.value)
    config.gin_bindings = tuple(config.gin_bindings) + tuple(_GIN_BINDINGS.value)
  stop = train.StopRequest().install()
  try:
    train.train_and_evaluate(config, _WORKDIR.value, should_stop=stop)
  except (validation.ConfigError, workdir_lib.ResumeError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  if stop.signal_name:  # checkpointed and stopped early: exit as the signal would
    print(f"\nStopped by {stop.signal_name}; rerun the same command to resume.",
          file=sys.stderr)
    sys.exit(128 + signal.Signals[stop.signal_name].value)
  logging.info("Summaries are in %s; view them with:  tensorboard --logdir=%s",
               _WORKDIR.value, _WORKDIR.value)
  print(f"\nSummaries: {os.path.abspath(_WORKDIR.value)}\n"
        f"View them:  tensorboard --logdir={_WORKDIR.value}")


if __name__ == "__main__":
  app.run(main)
