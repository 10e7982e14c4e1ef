r"""Trains one in-context regression transformer.

  python -m temporal_icl.main --config=configs/mala.py --config.M=8 \
      --workdir=runs/mala_M8

Rerunning the same command resumes from the latest checkpoint.  Summaries are
TensorBoard event files in the workdir: `tensorboard --logdir=<workdir>`.
"""

import logging as std_logging
import os
import re
import signal
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from temporal_icl import cli
from temporal_icl import multihost
from temporal_icl import train
from temporal_icl import validation
from temporal_icl import workdir as workdir_lib


def _env_int(name):
  """$name as an int, None when unset (or not an integer: then the flag reads unset)."""
  value = os.environ.get(name)
  return int(value) if value not in (None, "") and value.lstrip("-").isdigit() else None


_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. configs/mala.py.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and summaries.")
_GIN_FILES = flags.DEFINE_multi_string(
    "gin_file", [], "Extra gin files binding structural model choices.")
_GIN_BINDINGS = flags.DEFINE_multi_string(
    "gin_bindings", [], "Extra gin bindings, e.g. \"activation.name='gelu'\".")
flags.mark_flags_as_required(["config", "workdir"])

# Multi-host (README "Multi-host"): one process per host, same command, own id.
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", os.environ.get("JAX_COORDINATOR_ADDRESS"),
    "host:port of process 0 (default: $JAX_COORDINATOR_ADDRESS); unset = one process.")
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", _env_int("JAX_NUM_PROCESSES"),
    "Processes in the run (default: $JAX_NUM_PROCESSES).")
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", _env_int("JAX_PROCESS_ID"),
    "This process's index, 0 … num_processes-1 (default: $JAX_PROCESS_ID).")
_MAX_CHUNK_SECONDS = flags.DEFINE_float(
    "max_chunk_seconds", 10.0,
    "Longest single device call; bounds how long SIGTERM / Ctrl-C waits (results do "
    "not depend on it).")
_HOST_TIMEOUT = flags.DEFINE_integer(
    "host_timeout", 100,
    "Seconds a host may be silent before every process stops with an error.")


def _quiet_library_info_logs():
  """Keeps orbax's per-save INFO lines out of the progress log (warnings stay)."""
  logging.get_absl_handler().addFilter(
      lambda record: record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname)


def _unknown_field(argv, error: AttributeError) -> str:
  """'--config.gama: the config has no field 'gama'; did you mean 'gamma'?'."""
  text = str(error).encode().decode("unicode_escape")
  field = re.search(r"'(\w+)'", text)
  field = field.group(1) if field else "?"
  flag = next((a.split("=")[0] for a in argv
               if a.startswith("--config.") and a.split("=")[0].endswith(f".{field}")),
              f"--config.{field}")
  hint = re.search(r'Did you mean "([\w.]+)"', text)
  return (f"{flag}: the config has no field {field!r}"
          + (f"; did you mean {hint.group(1)!r}?" if hint else "."))


def parse_flags(argv):
  """absl's flag parser, with config mistakes reported as one sentence."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    cli.fail(str(e))
  except AttributeError as e:  # --config.<a field the config does not have>
    cli.fail(_unknown_field(argv, e))


def _load_config():
  try:
    config = _CONFIG.value
    config.keys()  # a config that failed to load raises only when first used
    return config
  except OSError as e:  # a missing config file, or one that failed to run
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    cli.fail(f"--config could not be loaded: {lines[-1] if lines else e}")


def main(argv):
  _quiet_library_info_logs()
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  try:
    cluster = multihost.cluster_from(_COORDINATOR.value, _NUM_PROCESSES.value,
                                     _PROCESS_ID.value, _HOST_TIMEOUT.value)
  except multihost.ClusterError as e:
    cli.fail(str(e))
  if cluster:
    multihost.initialize(cluster)
  config = _load_config()
  with config.unlocked():
    config.gin_files = tuple(config.gin_files) + tuple(_GIN_FILES.value)
    config.gin_bindings = tuple(config.gin_bindings) + tuple(_GIN_BINDINGS.value)
  stop = train.StopRequest().install()
  try:
    state = train.train_and_evaluate(config, _WORKDIR.value, should_stop=stop,
                                     max_chunk_seconds=_MAX_CHUNK_SECONDS.value)
  except (validation.ConfigError, workdir_lib.ResumeError) as e:
    cli.fail(str(e))
  except train.Diverged as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(3)
  if state is not None and int(state.step) < config.num_steps:  # stopped early
    # Exit as the signal would; a host stopped by another host's request exits
    # as if it had been sent SIGTERM itself.
    cause = stop.signal_name or "a stop request on another host"
    print(f"\nStopped by {cause}; rerun the same command to resume.", file=sys.stderr)
    sys.exit(128 + signal.Signals[stop.signal_name or "SIGTERM"].value)
  # The TensorBoard of this interpreter's environment (the venv's), as the README runs it.
  tensorboard = os.path.join(os.path.dirname(sys.executable), "tensorboard")
  if not os.path.exists(tensorboard):
    tensorboard = "tensorboard"
  logging.info("Summaries are in %s; view them with:  %s --logdir=%s",
               _WORKDIR.value, tensorboard, _WORKDIR.value)
  print(f"\nSummaries: {os.path.abspath(_WORKDIR.value)}\n"
        f"View them:  {tensorboard} --logdir={_WORKDIR.value}")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
