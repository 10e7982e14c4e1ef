r"""Trains one in-context regression transformer, or a group of them as one program.

  python -m temporal_icl.main --config=configs/mala.py --config.M=8 \
      --workdir=runs/mala_M8
  python -m temporal_icl.main --config=configs/mala.py --workdir=runs/mala \
      --group=M8-gamma0.01-seed0,M16-gamma0.01-seed0     # or --group=all

With --group, the named points of the config's get_sweep() train together (README
"Run groups"), each in <workdir>/<name> exactly as its own command would train it.
Rerunning the same command resumes from the latest checkpoints; finished runs are
skipped.  Summaries are TensorBoard event files in each workdir:
`tensorboard --logdir=<workdir>`.
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

from temporal_icl.common import cli
from temporal_icl.common import workdir as workdir_lib
from temporal_icl.launching import sweeps
from temporal_icl.training import multihost
from temporal_icl.training import train
from temporal_icl.training import validation


def _env_int(name):
  """$name as an int, None when unset (or not an integer: then the flag reads unset)."""
  value = os.environ.get(name)
  return int(value) if value not in (None, "") and value.lstrip("-").isdigit() else None


_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. configs/mala.py.", lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for checkpoints and summaries (with --group: the "
    "directory of the group's runs, each in <workdir>/<run name>).")
_GROUP = flags.DEFINE_multi_string(
    "group", None, "Runs of the config's get_sweep() to train as one program: their "
    "names (as launch/local_launch.py --dry_run lists them; repeat the flag or join "
    "them with commas), or 'all'.")
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


def _runs(config):
  """(configs, workdirs, names) of the run, or of the runs --group names."""
  if not _GROUP.value:
    return [config], [_WORKDIR.value], None
  path = config_flags.get_config_filename(flags.FLAGS["config"])
  wanted = [name for value in _GROUP.value for name in value.split(",") if name]
  try:
    points = sweeps.select(path, wanted)
    sweeps.refuse_overrides_of_swept_keys(points, sys.argv[1:])
  except ValueError as e:
    cli.fail(str(e))
  names = [sweeps.run_name(point) for point in points]
  return ([sweeps.apply(config, point) for point in points],
          [os.path.join(_WORKDIR.value, name) for name in names], names)


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
  configs, workdirs, names = _runs(config)
  stop = train.StopRequest().install()
  should_stop = lambda step: stop.requested
  try:
    states = train.train_group(configs, workdirs, names=names, should_stop=should_stop,
                               max_chunk_seconds=_MAX_CHUNK_SECONDS.value)
  except (validation.ConfigError, workdir_lib.ResumeError) as e:
    cli.fail(str(e))
  except train.Diverged as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(3)
  if any(s is not None and int(s.step) < config.num_steps for s in states):  # stopped
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
  from temporal_icl.analysis import plots  # pylint: disable=g-import-not-at-top
  std_logging.getLogger("tensorboard").setLevel(std_logging.WARNING)  # its reader chats
  for workdir, name in zip(workdirs, names or [None]):
    line = plots.verdict(workdir)  # the science in one line: memorised or generalised
    if line:
      print(f"{name}: {line}" if name else line[0].upper() + line[1:])


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
