r"""Reads a run's summaries back and writes the reference JSON metrics format.

  python -m temporal_icl.analysis.export --workdir=runs/demo --out=runs/demo.json

The JSON has `times` {start, end}, `config` (the run's config.json) and `stats`:
one dict per measured step with `step`, `lr`, `timestamp` and every metric of
the spec written at that step.  A resumed run wrote some steps twice (those
after its last checkpoint); the latest write of each (tag, step) wins, so the
history is that of an uninterrupted run.
"""

import collections
import json
import sys
import types
from typing import Dict, Tuple

from absl import app
from absl import flags
import numpy as np
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

from temporal_icl.common import cli
from temporal_icl.common import metric_names as names
from temporal_icl.common import workdir as workdir_lib

# The metric names the reference's JSON carries (besides step / lr / timestamp).
SPEC_METRICS = names.SPEC_METRICS

Series = Dict[int, Tuple[float, float]]  # step -> (wall_time, value)


def read_scalars(workdir: str) -> Dict[str, Series]:
  """Every scalar summary of `workdir`: tag -> {step: (wall_time, value)}.

  Uses TensorBoard's own reader; of repeated (tag, step) writes, the latest wins.
  """
  _without_tensorflow_if_not_loaded()
  acc = event_accumulator.EventAccumulator(
      workdir, size_guidance={event_accumulator.TENSORS: 0,
                              event_accumulator.SCALARS: 0},
      purge_orphaned_data=False)
  acc.Reload()
  series: Dict[str, Series] = collections.defaultdict(dict)
  for tag in acc.Tags()[event_accumulator.TENSORS]:
    for event in acc.Tensors(tag):
      value = tensor_util.make_ndarray(event.tensor_proto)
      if value.ndim or value.dtype.kind not in "fiu":
        continue  # texts, histograms: not scalars
      previous = series[tag].get(event.step)
      if previous is None or event.wall_time >= previous[0]:
        series[tag][event.step] = (event.wall_time, float(value))
  for tag in acc.Tags()[event_accumulator.SCALARS]:
    for event in acc.Scalars(tag):
      series[tag][event.step] = (event.wall_time, float(event.value))
  return dict(series)


def _without_tensorflow_if_not_loaded() -> None:
  """Lets TensorBoard's reader use its pure-Python stand-in for TensorFlow.

  Where TensorFlow is installed, TensorBoard's event reader imports all of it (3-4 s)
  to read files that its own stand-in (tensorboard.compat.tensorflow_stub) reads to
  the same values; it takes the stand-in when a module tensorboard.compat.notf exists
  (its no-TensorFlow build).  In a process that has not imported TensorFlow, we
  declare that module, so that export, the plots, the phase tables, the launcher's
  summary and a finished run's closing line start in a second.  A process that
  imports TensorFlow later (a run's summary writer) is unaffected: CLU writes with
  TensorFlow itself.
  """
  if "tensorflow" not in sys.modules:
    sys.modules.setdefault("tensorboard.compat.notf",
                           types.ModuleType("tensorboard.compat.notf"))


def scalar_array(series: Series) -> Tuple[np.ndarray, np.ndarray]:
  """(steps [N], values [N]) of one tag, sorted by step."""
  steps = np.array(sorted(series), dtype=np.int64)
  return steps, np.array([series[s][1] for s in steps])


def to_reference_json(workdir: str) -> dict:
  """The reference JSON structure for the run in `workdir`."""
  scalars = read_scalars(workdir)
  config = workdir_lib.read_config(workdir)
  rows: Dict[int, dict] = collections.defaultdict(dict)
  for tag in SPEC_METRICS:
    for step, (wall_time, value) in scalars.get(tag, {}).items():
      row = rows[step]
      row[tag] = value
      row["timestamp"] = max(row.get("timestamp", 0.0), wall_time)
  lr = scalars.get(names.LR, {})
  stats = []
  for step in sorted(rows):
    row = {"step": step, names.LR: lr[step][1] if step in lr else None}
    row.update(rows[step])
    stats.append(row)
  times = [t for series in scalars.values() for t, _ in series.values()]
  return {
      "times": {"start": min(times) if times else None,
                "end": max(times) if times else None},
      "config": config,
      "stats": stats,
  }


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  try:
    workdir_lib.require_run(FLAGS.workdir)
  except workdir_lib.RunDirError as e:
    cli.fail(str(e))
  result = to_reference_json(FLAGS.workdir)
  with open(FLAGS.out, "w") as f:
    json.dump(result, f, indent=1)
  print(f"Wrote {len(result['stats'])} steps of metrics to {FLAGS.out}")


if __name__ == "__main__":
  # Flags are defined only when run as a program, so that importing this module
  # next to other command-line modules never clashes.
  flags.DEFINE_string("workdir", None, "Run directory to export.")
  flags.DEFINE_string("out", None, "Output JSON path.")
  flags.mark_flags_as_required(["workdir", "out"])
  app.run(main)
