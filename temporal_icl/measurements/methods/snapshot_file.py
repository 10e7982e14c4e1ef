"""Prior-tracking snapshots: when to take them, and the snapshots.npz file.

snapshots.npz (compressed NumPy) holds, for N snapshots:
  steps           int32    [N]
  losses          float32  [N]          latest training loss at the snapshot
  tasks           float32  [N, M, D]    the task set of the last step trained
  pr              float32  [N, S, D]    PMC samples of the implicit prior
  delta_dmmse     float32  [N]          Δ_PT,dMMSE on a fresh current-task batch
  delta_ridge     float32  [N]          Δ_PT,Ridge on the same batch
  resample_steps  int32    [E]          only for resampling schedules
  config          str      []           the run's config as JSON

A snapshot at step s describes the model after s updates: its tasks are those
the update of step s − 1 trained on, so the snapshot at a resampling event
(the first step trained on new tasks) still shows the old set.

The file is rewritten atomically whenever a checkpoint is saved (and at the
end), so it always matches the latest checkpoint: a resumed run drops the
snapshots after its checkpoint and retakes them, identically.
"""

import os
from typing import Dict, List, Optional, Sequence, Set

import numpy as np

from temporal_icl.common import step_specs

FILENAME = "snapshots.npz"
_ARRAYS = {"steps": np.int32, "losses": np.float32, "tasks": np.float32,
           "pr": np.float32, "delta_dmmse": np.float32, "delta_ridge": np.float32}


def snapshot_steps(config, num_steps: int, resample_steps: Sequence[int] = (), *,
                   spec_steps: Optional[Set[int]] = None) -> Set[int]:
  """Steps at which snapshots are taken.

  The steps of the spec `snapshot_steps`; plus, with
  `dense_snapshot_period`, every that many steps inside [dense_step_start,
  dense_step_end), or — when no explicit window is given — inside the
  `dense_snapshot_window` steps after each resampling event.
  """
  if spec_steps is None:  # the spec's steps, unless parsed already
    spec_steps = step_specs.parse(config.snapshot_steps, num_steps)
  steps = set(spec_steps)
  period = config.dense_snapshot_period
  if period:
    if config.dense_step_start is not None:
      windows = [(config.dense_step_start, config.dense_step_end)]
    else:
      windows = [(e, e + config.dense_snapshot_window) for e in resample_steps]
    for start, end in windows:
      steps |= set(range(start, min(end, num_steps + 1), period))
  return {s for s in steps if 0 <= s <= num_steps}


class SnapshotFile:
  """Accumulates snapshots in memory and writes snapshots.npz atomically."""

  def __init__(self, workdir: str, config_json: str,
               resample_steps: Optional[np.ndarray] = None):
    self.path = os.path.join(workdir, FILENAME)
    self._config_json = config_json
    self._resample_steps = resample_steps
    self._rows: List[Dict[str, np.ndarray]] = []

  def resume(self, step: int) -> None:
    """Loads the snapshots taken at steps <= `step` (those of the checkpoint)."""
    self._rows = []
    if not os.path.exists(self.path):
      return
    with np.load(self.path) as f:
      for i, s in enumerate(f["steps"]):
        if s <= step:
          self._rows.append({name: f[name][i] for name in _ARRAYS})

  def add(self, **row) -> None:
    self._rows.append({name: np.asarray(row[name], dtype) for name, dtype in _ARRAYS.items()})

  def __len__(self):
    return len(self._rows)

  def write(self) -> None:
    arrays = {name: np.stack([r[name] for r in self._rows]).astype(dtype)
              if self._rows else np.zeros((0,), dtype)
              for name, dtype in _ARRAYS.items()}
    if self._resample_steps is not None:
      arrays["resample_steps"] = np.asarray(self._resample_steps, np.int32)
    arrays["config"] = np.asarray(self._config_json)
    tmp = self.path + ".tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, self.path)


def load(path: str) -> Dict[str, np.ndarray]:
  """Every array of a snapshots.npz, in memory (config as a str)."""
  with np.load(path) as f:
    arrays = {name: f[name] for name in f.files}
  arrays["config"] = str(arrays["config"])
  return arrays
