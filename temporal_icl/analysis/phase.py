r"""The phase diagram of a sweep over M and a non-stationarity: M* of each seed.

  python -m temporal_icl.analysis.phase --sweep_dir=results/laptop_phase \
      --csv=docs/laptop_phase.csv --figure=docs/laptop_phase.png --markdown

The non-stationarity axis is the MALA step size γ for a sweep of MALA (and
stationary) runs, and the number of segments per task R for a resampling sweep
(Dirichlet or equispaced); `strength_axis` tells which from the rows, and refuses a
sweep that mixes the two.  For one value s of that axis and one seed, let
r(M) = Δ_PT,dMMSE / Δ_PT,Ridge of
the run's final evaluation (on test tasks, or on train tasks): r > 1 means the
model is nearer ridge than dMMSE.  M* is where r reaches 1 and stays above 1 at
every larger M of the grid: with M_j the smallest grid value such that r > 1 at
M_j and at every larger grid value, M* lies between M_{j−1} (r ≤ 1) and M_j,
where the straight line through (log2 M_{j−1}, r_{j−1}) and (log2 M_j, r_j)
crosses r = 1, i.e. log2 M* = log2 M_{j−1} + (1 − r_{j−1}) / (r_j − r_{j−1}).
When r > 1 already at the smallest M, or never at the largest, M* is outside the
grid and is reported as such (no number).

The CSV has one row per finished run: M, schedule, gamma, R, seed, the final train
and test Δ_dMMSE and Δ_Ridge, and the final errors of the model, ridge and dMMSE on
train and test tasks.  The heat map is M × s coloured by log10 of the test r (mean
over seeds of the log), with each seed's M*(s) drawn over it.
"""

import collections
import csv
import math
import os
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from absl import app
from absl import flags
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from temporal_icl.analysis import export
from temporal_icl.analysis import plots
from temporal_icl.common import cli
from temporal_icl.common import metric_names as names
from temporal_icl.common import workdir as workdir_lib
from temporal_icl.core import data

SPLITS = names.SPLITS
_METRICS = [names.on(split, kind) for split in SPLITS
            for kind in (names.delta(names.DMMSE), names.delta(names.RIDGE),
                         names.error(names.MODEL), names.error(names.RIDGE),
                         names.error(names.DMMSE))]
COLUMNS = ["M", "schedule", "gamma", "R", "seed", "step"] + _METRICS
_INTEGER_COLUMNS = ("M", "R", "seed", "step")
RESAMPLING_SCHEDULES = ("dirichlet", "equispaced")  # their strength is R, not γ
AXIS_LABELS = {"gamma": "MALA step size γ", "R": "segments per task R (resampling)"}

BELOW_GRID = "above 1 already at the smallest M"
ABOVE_GRID = "never above 1 to the largest M"


class Threshold(NamedTuple):
  """M* of one (γ, seed) curve: a number, or None with the reason."""
  M_star: Optional[float]
  status: str  # 'crossed', BELOW_GRID or ABOVE_GRID


def threshold(Ms: Sequence[float], ratios: Sequence[float]) -> Threshold:
  """M* of the curve r(M) = ratios at the grid Ms (any order; M finite, > 0)."""
  order = np.argsort(Ms)
  M, r = np.asarray(Ms, float)[order], np.asarray(ratios, float)[order]
  above = r > 1
  if above.all():
    return Threshold(None, BELOW_GRID)
  if not above[-1]:
    return Threshold(None, ABOVE_GRID)
  j = len(above) - int(np.argmin(above[::-1]))  # first index of the final run of r > 1
  x0, x1 = math.log2(M[j - 1]), math.log2(M[j])
  x = x0 + (1.0 - r[j - 1]) / (r[j] - r[j - 1]) * (x1 - x0)
  return Threshold(2.0 ** x, "crossed")


def run_row(workdir: str) -> Optional[Dict[str, float]]:
  """The CSV row of a finished run (None if it is unfinished or never evaluated)."""
  if not workdir_lib.is_finished(workdir):
    return None
  config = workdir_lib.read_config(workdir)
  scalars = export.read_scalars(workdir)
  if any(tag not in scalars for tag in _METRICS):
    return None
  row = {"M": config["M"], "schedule": config["schedule"], "gamma": config["gamma"],
         "R": config["R"], "seed": config["seed"]}
  for tag in _METRICS:
    steps, values = export.scalar_array(scalars[tag])
    row[tag], row["step"] = float(values[-1]), int(steps[-1])
  return row


def sweep_rows(sweep_dir: str) -> List[Dict[str, float]]:
  """The rows of every finished run below `sweep_dir`, sorted by (M, R, γ, seed)."""
  rows = [r for r in map(run_row, plots.find_runs(sweep_dir)) if r is not None]
  return sorted(rows, key=lambda r: (r["M"], r["R"], r["gamma"], r["seed"]))


def write_csv(rows: Sequence[Dict[str, float]], path: str) -> None:
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
      writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})


def _cell_value(column: str, text: str):
  if column == "schedule":
    return text
  return int(text) if column in _INTEGER_COLUMNS else float(text)


def read_csv(path: str) -> List[Dict[str, float]]:
  """The rows of a CSV of write_csv (one written before R and the schedule were
  columns reads as MALA runs, R = 1)."""
  with open(path) as f:
    rows = [{k: _cell_value(k, v) for k, v in row.items()} for row in csv.DictReader(f)]
  for row in rows:
    row.setdefault("schedule", "mala")
    row.setdefault("R", 1)
  return rows


def strength_axis(rows: Sequence[Dict[str, float]]) -> str:
  """'R' for a resampling sweep, 'gamma' for MALA and stationary runs.

  Raises:
    ValueError: the rows mix resampling and MALA runs (one sentence).
  """
  resampling = {r.get("schedule") in RESAMPLING_SCHEDULES for r in rows}
  if len(resampling) > 1:
    raise ValueError("the sweep mixes resampling runs (axis R) with MALA or stationary "
                     "runs (axis γ); draw each kind from its own directory or CSV.")
  return "R" if resampling == {True} else "gamma"


def ratio(row: Dict[str, float], split: str) -> float:
  """r = Δ_dMMSE / Δ_Ridge on `split` tasks (> 1: nearer ridge)."""
  return (row[names.on(split, names.delta(names.DMMSE))]
          / row[names.on(split, names.delta(names.RIDGE))])


def thresholds(rows: Sequence[Dict[str, float]], split: str = "test"
               ) -> Dict[Tuple[float, int], Threshold]:
  """{(s, seed): M*} over the finite M of `rows`, s on the strength_axis (γ or R)."""
  axis = strength_axis(rows)
  curves = collections.defaultdict(list)
  for row in rows:
    if not data.is_infinite(row["M"]):  # M = ∞ is not on the log2 M axis
      curves[(row[axis], row["seed"])].append((row["M"], ratio(row, split)))
  return {key: threshold(*zip(*points)) for key, points in sorted(curves.items())}


def missing(rows: Sequence[Dict[str, float]], sweep: Sequence[Dict[str, float]]
            ) -> Dict[int, int]:
  """{M: how many points of `sweep` (override dicts, as get_sweep() returns) have no
  row}, for the M values with any missing; a point's absent keys read as in rows."""
  axis = strength_axis(rows) if rows else "gamma"
  have = {(r["M"], r[axis], r["seed"]) for r in rows}
  default = 1 if axis == "R" else 0.0
  counts = collections.Counter(
      p["M"] for p in sweep if (p["M"], p.get(axis, default), p.get("seed", 0)) not in have)
  return dict(sorted(counts.items()))


def _cell(t: Threshold) -> str:
  if t.M_star is not None:
    return f"{t.M_star:.3g}"
  return "< grid" if t.status == BELOW_GRID else "> grid"


def markdown_table(rows: Sequence[Dict[str, float]], split: str = "test") -> str:
  """M*(s) per seed, and mean ± std (ddof = 1) over the seeds where it crossed.

  Also in log2: the mean and std of log2 M*, which is the axis M* lives on."""
  found = thresholds(rows, split)
  strengths = sorted({value for value, _ in found})
  seeds = sorted({s for _, s in found})
  name = "γ" if strength_axis(rows) == "gamma" else "R"
  lines = [f"| {name} | {' | '.join(f'seed {s}' for s in seeds)} | mean ± std | "
           "log2 M*: mean ± std |", "|" + "---|" * (len(seeds) + 3)]
  for strength in strengths:
    cells = [found.get((strength, s)) for s in seeds]
    values = np.asarray([c.M_star for c in cells if c and c.M_star is not None])
    if len(values):
      std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
      logs = np.log2(values)
      log_std = float(np.std(logs, ddof=1)) if len(values) > 1 else 0.0
      summary = (f"{values.mean():.3g} ± {std:.2g}"
                 + (f" ({len(values)} of {len(cells)} seeds)" if len(values) < len(cells)
                    else ""))
      log_summary = f"{logs.mean():.2f} ± {log_std:.2f}"
    else:
      summary = log_summary = "–"
    lines.append(f"| {strength:g} | {' | '.join(_cell(c) if c else '–' for c in cells)} | "
                 f"{summary} | {log_summary} |")
  return "\n".join(lines)


def plot_heat_map(rows: Sequence[Dict[str, float]], path: str,
                  split: str = "test") -> Optional[str]:
  """M × s coloured by log10 r (mean over seeds), each seed's M*(s) drawn over it."""
  finite = [r for r in rows if not data.is_infinite(r["M"])]
  if not finite:
    return None
  axis = strength_axis(finite)
  Ms = sorted({r["M"] for r in finite})
  strengths = sorted({r[axis] for r in finite})
  grid = np.full((len(Ms), len(strengths)), np.nan)
  for i, M in enumerate(Ms):
    for j, strength in enumerate(strengths):
      logs = [math.log10(ratio(r, split)) for r in finite
              if r["M"] == M and r[axis] == strength]
      if logs:
        grid[i, j] = np.mean(logs)
  fig, ax = plt.subplots(figsize=(7, 6))
  limit = max(np.nanmax(np.abs(grid)), 1e-3)
  mesh = ax.pcolormesh(np.arange(len(strengths) + 1) - 0.5, np.arange(len(Ms) + 1) - 0.5,
                       grid, cmap="RdBu_r", vmin=-limit, vmax=limit, shading="flat")
  fig.colorbar(mesh, ax=ax, label=f"log10 Δ_dMMSE / Δ_Ridge on {split} tasks "
                                  "(> 0: nearer ridge), mean over seeds")
  found = thresholds(rows, split)
  seeds = sorted({s for _, s in found})
  log2_M = np.log2(Ms)
  for k, seed in enumerate(seeds):
    xs, ys = [], []
    for j, strength in enumerate(strengths):
      t = found.get((strength, seed))
      if t is None:
        continue
      if t.M_star is not None:  # grid rows are log2-spaced: index by interpolation
        xs.append(j + 0.08 * (k - (len(seeds) - 1) / 2))
        ys.append(np.interp(math.log2(t.M_star), log2_M, np.arange(len(Ms))))
      else:
        ax.plot(j, -0.5 if t.status == BELOW_GRID else len(Ms) - 0.5,
                "v" if t.status == BELOW_GRID else "^", color="k", ms=6, clip_on=False)
    ax.plot(xs, ys, "o-", color=f"C{k + 2}", lw=1.5, ms=5, label=f"M* of seed {seed}")
  ax.set_xticks(range(len(strengths)), [f"{g:g}" for g in strengths])
  ax.set_yticks(range(len(Ms)), [str(M) for M in Ms])
  ax.set(xlabel=AXIS_LABELS[axis], ylabel="task diversity M",
         title=f"Where the model turns from dMMSE to ridge ({split} tasks)")
  ax.legend(fontsize=8, loc="upper left")
  return plots.finish(fig, path, dpi=120)


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  if not (FLAGS.sweep_dir or FLAGS.from_csv):
    cli.fail("give --sweep_dir (a sweep's runs) or --from_csv (a table written before).")
  if FLAGS.sweep_dir and not os.path.isdir(FLAGS.sweep_dir):
    cli.fail(f"--sweep_dir={FLAGS.sweep_dir} does not exist.")
  rows = read_csv(FLAGS.from_csv) if FLAGS.from_csv else sweep_rows(FLAGS.sweep_dir)
  if not rows:
    cli.fail(f"no finished, evaluated run under --sweep_dir={FLAGS.sweep_dir}.")
  try:
    strength_axis(rows)
  except ValueError as e:
    cli.fail(str(e))
  print(f"{len(rows)} finished runs")
  if FLAGS.sweep_config:
    from temporal_icl.launching import sweeps  # pylint: disable=g-import-not-at-top
    try:
      sweep = sweeps.load_sweep(FLAGS.sweep_config)
    except ValueError as e:
      cli.fail(str(e))
    gaps = missing(rows, sweep)
    per_M = collections.Counter(p["M"] for p in sweep)
    print(f"{len(sweep) - sum(gaps.values())} of the {len(sweep)} points of "
          f"{FLAGS.sweep_config} have finished" + (
              "; missing: " + ", ".join(f"M={M}: {n} of {per_M[M]}" for M, n in gaps.items())
              if gaps else "."))
  if FLAGS.csv:
    write_csv(rows, FLAGS.csv)
    print(f"Wrote {FLAGS.csv}")
  if FLAGS.figure:
    print(f"Wrote {plot_heat_map(rows, FLAGS.figure)}")
  if FLAGS.markdown:
    for split in SPLITS:
      print(f"\nM* on {split} tasks:\n{markdown_table(rows, split)}")


if __name__ == "__main__":
  flags.DEFINE_string("sweep_dir", None, "Directory holding the sweep's runs.")
  flags.DEFINE_string("from_csv", None, "Read the rows from this CSV instead.")
  flags.DEFINE_string("csv", None, "Write one row per finished run here.")
  flags.DEFINE_string("figure", None, "Write the M × γ heat map here (PNG).")
  flags.DEFINE_bool("markdown", False, "Print the M*(γ) tables (test and train tasks).")
  flags.DEFINE_string("sweep_config", None, "The sweep's config file: also list the "
                      "points of its get_sweep() that have not finished.")
  app.run(main)
