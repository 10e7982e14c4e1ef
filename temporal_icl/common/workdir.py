"""The run directory: its recorded config, resume checks, and orbax checkpoints.

Layout of a workdir:
  config.json            the resolved config of the run (written at start)
  operative_config.gin   the gin bindings the network was built with
  checkpoints/<step>/    orbax checkpoints of the TrainState (for resuming)
  trajectory/<step>/     TrainStates kept at config.trajectory_steps (for analysis)
  snapshots.npz          prior-tracking snapshots (when config.snapshot_steps is set)
  events.out.tfevents.*  CLU / TensorBoard summaries: at each measurement boundary
                         train_loss (the mean since the previous boundary) and the
                         metrics of the measurements due there; at start, hparams,
                         the custom-scalars layout, and the config and gin
                         bindings as text
  FINISHED               written when the run completed all its steps
  DIVERGED               written (with the reason) when its training diverged
"""

import json
import os
import shutil
import socket
from typing import Any, Dict, List, Optional, Sequence

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import orbax.checkpoint as ocp


CONFIG_FILE = "config.json"
OPERATIVE_GIN_FILE = "operative_config.gin"
CHECKPOINTS_DIR = "checkpoints"
FINISHED_FILE = "FINISHED"
DIVERGED_FILE = "DIVERGED"
TRAJECTORY_DIR = "trajectory"


class ResumeError(ValueError):
  """The workdir holds a run whose config differs from the requested one."""


def _flatten(tree: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
  return flat


def config_to_json(config: ml_collections.ConfigDict) -> str:
  return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str)


class RunDirError(ValueError):
  """A path given as a run directory is not one; the message is one sentence."""


def require_run(workdir: str) -> None:
  """Raises RunDirError unless `workdir` holds a run (its config.json)."""
  if not os.path.isdir(workdir):
    raise RunDirError(f"{workdir} does not exist.")
  if not os.path.exists(os.path.join(workdir, CONFIG_FILE)):
    raise RunDirError(f"{workdir} is not a run directory (it has no {CONFIG_FILE}).")


def read_config(workdir: str) -> Dict[str, Any]:
  """The config a run recorded in its config.json, as a dict.

  Every reader of config.json goes through here (or load_config).
  """
  with open(os.path.join(workdir, CONFIG_FILE)) as f:
    return json.load(f)


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run recorded in its config.json."""
  return ml_collections.ConfigDict(read_config(workdir))


def config_diff(old: Dict[str, Any], new: Dict[str, Any],
                ignore: Sequence[str] = ()) -> List[str]:
  """Lines 'field: old -> new' for every differing leaf not in `ignore`."""
  a, b = _flatten(old), _flatten(new)
  return [f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}"
          for k in sorted(set(a) | set(b))
          if k not in ignore and a.get(k) != b.get(k)]


def prepare(workdir: str, config: ml_collections.ConfigDict,
            resumable_changes: Sequence[str]) -> None:
  """Creates `workdir`, or checks that it holds the same experiment.

  With `config.force_restart` the workdir is emptied first.  Otherwise an
  existing config.json must equal `config` except for `resumable_changes`;
  a mismatch raises ResumeError with the diff.  Every process checks; only
  process 0 writes (the caller syncs the processes afterwards).
  """
  path = os.path.join(workdir, CONFIG_FILE)
  new = json.loads(config_to_json(config))
  restart = config.get("force_restart", False)
  extended = False
  if not restart and os.path.exists(path):
    old = read_config(workdir)
    diff = config_diff(old, new, ignore=resumable_changes)
    if diff:
      raise ResumeError(
          f"{workdir} holds a run with a different config; refusing to resume it.\n"
          + "\n".join(f"  {line}" for line in diff)
          + "\nUse another --workdir, or --config.force_restart=True to wipe it and "
          "start over.")
    extended = old.get("num_steps") != new.get("num_steps")
    if extended and is_finished(workdir) and not os.path.isdir(
        os.path.join(workdir, CHECKPOINTS_DIR)):
      raise ResumeError(
          f"{workdir} holds a run that finished {old.get('num_steps')} steps without "
          "keeping its final checkpoint (keep_final_checkpoint=False), so it cannot be "
          f"extended to {new.get('num_steps')}; use --config.force_restart=True to train "
          "it again from step 0.")
  if jax.process_index() != 0:
    return
  if restart and os.path.isdir(workdir):
    shutil.rmtree(workdir)
  os.makedirs(workdir, exist_ok=True)
  if extended:
    mark_unfinished(workdir)
  with open(path, "w") as f:
    f.write(config_to_json(config))


LOCK_FILE = "RUNNING"  # "<hostname> <pid>" of the process training in the workdir


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def check_not_running(workdir: str) -> None:
  """Raises ResumeError if a live process holds the workdir's lock; clears a stale one."""
  path = os.path.join(workdir, LOCK_FILE)
  if not os.path.exists(path):
    return
  with open(path) as f:
    host, _, pid = f.read().strip().partition(" ")
  if host != socket.gethostname():
    raise ResumeError(
        f"{workdir} is locked by a process on host {host!r} (pid {pid}); if no run is "
        f"using it any more, delete {path} and rerun.")
  if pid.isdigit() and _pid_alive(int(pid)) and int(pid) != os.getpid():
    raise ResumeError(f"{workdir} is in use by another run (pid {pid} on this host); "
                      "wait for it to finish or stop it first.")
  logging.warning("Removing the stale lock %s (pid %s is gone).", path, pid)
  os.remove(path)


def lock(workdir: str) -> None:
  """Marks the workdir as used by this process (process 0 only)."""
  if jax.process_index() == 0:
    with open(os.path.join(workdir, LOCK_FILE), "w") as f:
      f.write(f"{socket.gethostname()} {os.getpid()}\n")


def unlock(workdir: str) -> None:
  path = os.path.join(workdir, LOCK_FILE)
  if jax.process_index() == 0 and os.path.exists(path):
    os.remove(path)


def is_finished(workdir: str) -> bool:
  return os.path.exists(os.path.join(workdir, FINISHED_FILE))


def _recorded_as(workdir: str, marker: str, config: ml_collections.ConfigDict) -> bool:
  """`marker` exists beside a config.json equal to `config` (num_steps included), and
  `config` does not ask to restart."""
  if config.get("force_restart", False) or not all(
      os.path.exists(os.path.join(workdir, f)) for f in (marker, CONFIG_FILE)):
    return False
  old = read_config(workdir)
  return not config_diff(old, json.loads(config_to_json(config)), ignore=("force_restart",))


def finished_as(workdir: str, config: ml_collections.ConfigDict) -> bool:
  """True if `workdir` holds a finished run of exactly `config` (num_steps included).

  A finished run asked for more steps is not finished (prepare() extends it).
  """
  return _recorded_as(workdir, FINISHED_FILE, config)


def diverged_as(workdir: str, config: ml_collections.ConfigDict) -> bool:
  """True if `workdir` holds a diverged run of exactly `config`."""
  return _recorded_as(workdir, DIVERGED_FILE, config)


def divergence(workdir: str) -> str:
  """What the DIVERGED file of `workdir` says."""
  with open(os.path.join(workdir, DIVERGED_FILE)) as f:
    return f.read().strip()


def mark_diverged(workdir: str, message: str) -> None:
  if jax.process_index() == 0:
    with open(os.path.join(workdir, DIVERGED_FILE), "w") as f:
      f.write(message + "\n")


def mark_finished(workdir: str, step: int) -> None:
  if jax.process_index() != 0:
    return
  with open(os.path.join(workdir, FINISHED_FILE), "w") as f:
    f.write(f"{step}\n")


def mark_unfinished(workdir: str) -> None:
  path = os.path.join(workdir, FINISHED_FILE)
  if os.path.exists(path):
    os.remove(path)


CHECKPOINTS_KEPT = 3  # the latest ones; older are deleted as new ones land


def checkpoint_manager(workdir: str) -> ocp.CheckpointManager:
  """The resume checkpoints of `workdir` (only saving a step writes or deletes any)."""
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, CHECKPOINTS_DIR)),
      options=ocp.CheckpointManagerOptions(
          preservation_policy=ocp.checkpoint_managers.LatestN(n=CHECKPOINTS_KEPT),
          create=True))


def trajectory_manager(workdir: str) -> ocp.CheckpointManager:
  """States kept for analysis (essential dynamics, LLC), never deleted."""
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, TRAJECTORY_DIR)),
      options=ocp.CheckpointManagerOptions(
          preservation_policy=ocp.checkpoint_managers.preservation_policy.PreserveAll(),
          create=True))


def _savable(tree: Any) -> Any:
  """Orbax cannot save zero-size arrays (the [0, D] task set of M = ∞): each is
  stored as one zero of its dtype, and restored from the `like` tree's shape."""
  return jax.tree.map(lambda x: jnp.zeros((1,), x.dtype) if x.size == 0 else x, tree)


def restore(manager: ocp.CheckpointManager, step: int, like: Any) -> Any:
  """The checkpoint of `step` restored with the structure and shardings of `like`."""
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _savable(like))
  restored = manager.restore(step, args=ocp.args.StandardRestore(abstract))
  return jax.tree.map(lambda r, l: l if l.size == 0 else r, restored, like)


def restore_latest(manager: ocp.CheckpointManager, like: Any) -> Optional[Any]:
  """The latest readable checkpoint, restored with the structure and shardings of `like`.

  A damaged checkpoint (truncated or half-written files) is reported, deleted so
  that training can save that step again, and the one before it is tried.

  Raises:
    ResumeError: checkpoints exist but none can be read.
  """
  steps = sorted(manager.all_steps(), reverse=True)
  for step in steps:
    try:
      return restore(manager, step, like)
    except Exception as e:  # pylint: disable=broad-except
      reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
      logging.warning("Checkpoint %d in %s cannot be read (%s); deleting it and trying "
                      "the one before.", step, manager.directory, reason)
      manager.delete(step)
  if steps:
    raise ResumeError(
        f"No checkpoint in {manager.directory} can be read (tried steps "
        f"{', '.join(map(str, steps))}); rerun with --config.force_restart=True to start "
        "over.")
  return None


def save(manager: ocp.CheckpointManager, step: int, state: Any) -> None:
  if step not in manager.all_steps():
    manager.save(step, args=ocp.args.StandardSave(_savable(state)))


def remove_checkpoints(manager: ocp.CheckpointManager, workdir: str) -> None:
  manager.wait_until_finished()
  manager.close()
  if jax.process_index() == 0:
    shutil.rmtree(os.path.join(workdir, CHECKPOINTS_DIR), ignore_errors=True)
