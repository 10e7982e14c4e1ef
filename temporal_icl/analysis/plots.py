r"""Figures of one run, or of a sweep, from its summaries and snapshots.

  python -m temporal_icl.analysis.plots --workdir=runs/demo            # -> runs/demo/plots/*.png
  python -m temporal_icl.analysis.plots --workdirs=runs/a,runs/b --out=phase.png
  python -m temporal_icl.analysis.plots --sweep_dir=runs/mala_sweep   # every run below it

One run gives, where the run measured them:
  losses.png         training loss and the model / ridge / dMMSE errors
  deltas.png         Δ_PT,dMMSE and Δ_PT,Ridge (train and test), log axes
  energy.png         energy distance of the implicit prior to each Bayes prior
  llc.png            the local learning coefficient with its ±std band
  prior.png          prior tracking: PMC samples as a step × value heat map, the
                     task positions and the resampling events (D = 1; first
                     coordinate otherwise)
Several runs give phase.png: final Δ_PT,dMMSE, Δ_PT,Ridge and their difference
against M, one line per non-stationarity level (γ or R), mean ± std over seeds.
"""

import collections
import os
from typing import Dict, List, Optional, Sequence

from absl import app
from absl import flags
from absl import logging
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from temporal_icl.analysis import export
from temporal_icl.common import cli
from temporal_icl.common import metric_names as names
from temporal_icl.common import workdir as workdir_lib
from temporal_icl.core import data
from temporal_icl.core import schedules
from temporal_icl.measurements.methods import snapshot_file as snapshots_lib

_COLORS = {names.MODEL: "C0", names.RIDGE: "C1", names.DMMSE: "C2"}


def _series(scalars, tag):
  if tag not in scalars:
    return None
  return export.scalar_array(scalars[tag])


def finish(fig, path, dpi=110):
  """Lays out, saves and closes `fig`; returns `path`."""
  fig.tight_layout()
  fig.savefig(path, dpi=dpi)
  plt.close(fig)
  return path


def _step_axis(ax, steps):
  """Log-like step axis whose linear part covers only [0, first positive step]."""
  positive = [s for s in np.asarray(steps).tolist() if s > 0]
  ax.set_xscale("symlog", linthresh=min(positive) if positive else 1, linscale=0.3)


def _positive_log_axes(ax, steps):
  _step_axis(ax, steps)
  ax.set_yscale("log")


def run_title(config: Optional[Dict]) -> str:
  """'M=8, γ=0.01: ' for a figure title ('' without a config)."""
  if not config:
    return ""
  M = "∞" if data.is_infinite(config["M"]) else config["M"]
  return f"M={M}, {schedules.label(config)}: "


def plot_losses(scalars, path, config: Optional[Dict] = None) -> Optional[str]:
  if names.on("train", names.error(names.MODEL)) not in scalars:
    return None
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
  nll = bool(config) and config.get("head", "point") != "point"
  for ax, split in zip(axes, names.SPLITS):
    for who in (names.MODEL, names.RIDGE, names.DMMSE):
      s = _series(scalars, names.on(split, names.error(who)))
      if s is not None:
        ax.plot(*s, label=who, color=_COLORS[who], lw=1.5 if who == names.MODEL else 1)
    _positive_log_axes(ax, _series(scalars, names.on(split, names.error(names.MODEL)))[0])
    if split == "train" and names.TRAIN_LOSS in scalars:
      # The training loss is an MSE only for the point head; an NLL gets its own axis.
      target = ax.twinx() if nll else ax
      target.plot(*_series(scalars, names.TRAIN_LOSS), label="training loss", color="0.6",
                  lw=0.8)
      if nll:
        target.set_ylabel("training loss (NLL)", color="0.4")
        target.legend(fontsize=8, loc="lower left")
    ax.set(title=f"{run_title(config)}{split} batch", xlabel="step",
           ylabel="mean squared error")
    ax.legend(fontsize=8)
  return finish(fig, path)


def plot_deltas(scalars, path, config: Optional[Dict] = None) -> Optional[str]:
  first = names.on("train", names.delta(names.DMMSE))
  if first not in scalars:
    return None
  fig, ax = plt.subplots(figsize=(6, 4))
  for split, style in zip(names.SPLITS, ("-", "--")):
    for who in (names.DMMSE, names.RIDGE):
      s = _series(scalars, names.on(split, names.delta(who)))
      if s is not None:
        label = f"Δ_PT,{'dMMSE' if who == names.DMMSE else 'Ridge'} ({split})"
        ax.plot(*s, style, color=_COLORS[who], label=label)
  _positive_log_axes(ax, _series(scalars, first)[0])
  ax.set(xlabel="step", ylabel="Δ_PT (per dimension)",
         title=f"{run_title(config)}distance to each Bayes predictor")
  ax.legend(fontsize=8)
  return finish(fig, path)


def plot_energy(scalars, path, config: Optional[Dict] = None) -> Optional[str]:
  if names.energy_dist(names.RIDGE) not in scalars:
    return None
  fig, ax = plt.subplots(figsize=(6, 4))
  for who, label in ((names.RIDGE, "to N(0, I) (ridge prior)"),
                     (names.DMMSE, "to the task set (dMMSE prior)")):
    s = _series(scalars, names.energy_dist(who))
    if s is not None:
      ax.plot(*s, "o-", ms=3, color=_COLORS[who], label=label)
  _step_axis(ax, _series(scalars, names.energy_dist(names.RIDGE))[0])
  ax.set(xlabel="step", ylabel="energy distance", title=f"{run_title(config)}implicit prior")
  ax.legend(fontsize=8)
  return finish(fig, path)


def plot_llc(scalars, path, config: Optional[Dict] = None) -> Optional[str]:
  if names.LLC_MEAN not in scalars:
    return None
  steps, mean = _series(scalars, names.LLC_MEAN)
  fig, ax = plt.subplots(figsize=(6, 4))
  ax.plot(steps, mean, "o-", ms=3, color="C3", label="λ̂ (mean over chains)")
  if names.LLC_STD in scalars:
    _, std = _series(scalars, names.LLC_STD)
    ax.fill_between(steps, mean - std, mean + std, color="C3", alpha=0.25, label="± std")
  _step_axis(ax, steps)
  ax.set(xlabel="step", ylabel="local learning coefficient",
         title=f"{run_title(config)}LLC over training")
  ax.legend(fontsize=8)
  return finish(fig, path)


def plot_prior(snapshot_path, path, num_bins: int = 80) -> Optional[str]:
  """Step × value heat map of the PMC prior samples, tasks and events marked."""
  if not os.path.exists(snapshot_path):
    return None
  snaps = snapshots_lib.load(snapshot_path)
  steps, pr, tasks = snaps["steps"], snaps["pr"][..., 0], snaps["tasks"][..., 0]
  if not len(steps):
    return None
  lo, hi = np.percentile(pr, [0.5, 99.5])
  lo, hi = min(lo, tasks.min(), -3), max(hi, tasks.max(), 3)
  bins = np.linspace(lo, hi, num_bins + 1)
  density = np.stack([np.histogram(row, bins=bins, density=True)[0] for row in pr], 1)
  edges = np.concatenate([steps, [steps[-1] + (steps[-1] - steps[-2] if len(steps) > 1
                                               else 1)]])
  fig, ax = plt.subplots(figsize=(9, 4))
  mesh = ax.pcolormesh(edges, bins, density, cmap="magma", shading="flat")
  fig.colorbar(mesh, ax=ax, label="density of PMC task samples")
  for m in range(tasks.shape[1]):
    ax.plot(steps, tasks[:, m], ".", ms=2, color="cyan",
            label="training tasks" if m == 0 else None)
  for i, event in enumerate(snaps.get("resample_steps", ())):
    ax.axvline(event, color="white", lw=0.6, ls=":",
               label="resampling event" if i == 0 else None)
  dim = "" if snaps["pr"].shape[-1] == 1 else " (first coordinate)"
  ax.set(xlabel="step", ylabel=f"task value{dim}", title="implicit prior over training")
  ax.legend(fontsize=8, loc="upper right")
  return finish(fig, path)


def plot_run(workdir: str, out_dir: Optional[str] = None) -> List[str]:
  """Every figure one run's records support; returns the written paths."""
  out_dir = out_dir or os.path.join(workdir, "plots")
  os.makedirs(out_dir, exist_ok=True)
  scalars = export.read_scalars(workdir)
  config = (workdir_lib.read_config(workdir)
            if os.path.exists(os.path.join(workdir, workdir_lib.CONFIG_FILE)) else None)
  made = [plot_losses(scalars, os.path.join(out_dir, "losses.png"), config),
          plot_deltas(scalars, os.path.join(out_dir, "deltas.png"), config),
          plot_energy(scalars, os.path.join(out_dir, "energy.png"), config),
          plot_llc(scalars, os.path.join(out_dir, "llc.png"), config),
          plot_prior(os.path.join(workdir, snapshots_lib.FILENAME),
                     os.path.join(out_dir, "prior.png"))]
  return [p for p in made if p]


# ---- sweeps ---------------------------------------------------------------


def final_metrics(workdir: str, split: str = "train") -> Optional[Dict[str, float]]:
  """Config and the last measured Δ_PT values of a run (None if it has none)."""
  if not os.path.exists(os.path.join(workdir, workdir_lib.CONFIG_FILE)):
    return None
  config = workdir_lib.read_config(workdir)
  scalars = export.read_scalars(workdir)
  out = {"config": config}
  for who in (names.DMMSE, names.RIDGE):
    tag = names.on(split, names.delta(who))
    if tag not in scalars:
      return None
    steps, values = export.scalar_array(scalars[tag])
    out[who], out["step"] = float(values[-1]), int(steps[-1])
  return out


def verdict(workdir: str) -> Optional[str]:
  """'step 9216: on test tasks nearer ridge (Δ_Ridge 0.31, Δ_dMMSE 0.53)', from the
  run's last evaluation (None if it has none)."""
  final = final_metrics(workdir, "test")
  if final is None:
    return None
  nearer = "ridge" if final["ridge"] < final["dmmse"] else "dMMSE"
  return (f"step {final['step']}: on test tasks nearer {nearer} (Δ_Ridge "
          f"{final['ridge']:.3g}, Δ_dMMSE {final['dmmse']:.3g})")


def find_runs(root: str) -> List[str]:
  """Every directory below `root` (itself included) holding a config.json."""
  return sorted(d for d, _, files in os.walk(root) if workdir_lib.CONFIG_FILE in files)


def sweep_table(workdirs: Sequence[str], split: str = "train"):
  """{label: {M: [(Δ_dMMSE, Δ_Ridge) per seed]}} of the runs that measured."""
  table = collections.defaultdict(lambda: collections.defaultdict(list))
  for w in workdirs:
    final = final_metrics(w, split)
    if final is None:
      logging.warning("%s has no %s Δ_PT summaries yet; skipped.", w, split)
      continue
    table[schedules.label(final["config"])][final["config"]["M"]].append(
        (final["dmmse"], final["ridge"]))
  return table


def summary_markdown(workdirs: Sequence[str]) -> str:
  """Markdown table of final Δ_PT (mean ± std over seeds) per (M, non-stationarity).

  Columns: train and test Δ_PT,dMMSE and Δ_PT,Ridge (std with ddof = 1), which
  predictor the model is nearer on train tasks in how many seeds, and the
  separation ratios of each seed: train Δ_Ridge / Δ_dMMSE (> 1: nearer dMMSE) and
  test Δ_dMMSE / Δ_Ridge (> 1: nearer ridge).
  """
  train, test = sweep_table(workdirs, "train"), sweep_table(workdirs, "test")
  lines = ["| M | non-stationarity | seeds | train Δ_dMMSE | train Δ_Ridge | "
           "test Δ_dMMSE | test Δ_Ridge | nearer on train tasks | "
           "train Δ_Ridge/Δ_dMMSE, each seed | test Δ_dMMSE/Δ_Ridge, each seed |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  fmt = lambda v: f"{np.mean(v):.3f} ± {(np.std(v, ddof=1) if len(v) > 1 else 0.0):.3f}"
  ratios = lambda a, b: " · ".join(f"{x / y:.1f}" for x, y in zip(a, b))
  order = sorted(train, key=lambda label: (label != "stationary", label))
  for label in order:
    for M in sorted(train[label], key=_m_position):
      tr = np.asarray(train[label][M])
      te = np.asarray(test.get(label, {}).get(M, [(np.nan, np.nan)]))
      ridge_wins = int(np.sum(tr[:, 1] < tr[:, 0]))
      nearer = (f"ridge {ridge_wins}/{len(tr)}" if 2 * ridge_wins > len(tr)
                else f"dMMSE {len(tr) - ridge_wins}/{len(tr)}")
      lines.append(f"| {'∞' if data.is_infinite(M) else M} | {label} | {len(tr)} | {fmt(tr[:, 0])} | "
                   f"{fmt(tr[:, 1])} | {fmt(te[:, 0])} | {fmt(te[:, 1])} | {nearer} | "
                   f"{ratios(tr[:, 1], tr[:, 0])} | {ratios(te[:, 0], te[:, 1])} |")
  return "\n".join(lines)


def _m_position(M):
  return np.inf if data.is_infinite(M) else M


def plot_phase_diagram(workdirs: Sequence[str], path: str, split: str = "train"
                       ) -> Optional[str]:
  table = sweep_table(workdirs, split)
  if not table:
    return None
  fig, axes = plt.subplots(1, 3, figsize=(14, 4))
  finite = sorted({M for rows in table.values() for M in rows if not data.is_infinite(M)})
  infinite_x = (finite[-1] * 4) if finite else 1
  order = sorted(table, key=lambda label: (label != "stationary", label))
  for i, label in enumerate(order):
    Ms = sorted(table[label], key=_m_position)
    # Lines share M values: offset each a little (×1.06 per line) so none hides another.
    offset = 1.06 ** (i - (len(order) - 1) / 2)
    xs = [(infinite_x if data.is_infinite(M) else M) * offset for M in Ms]
    values = [np.asarray(table[label][M]) for M in Ms]  # [seeds, 2]
    columns = (lambda v: v[:, 0], lambda v: v[:, 1], lambda v: v[:, 0] - v[:, 1])
    for ax, column in zip(axes, columns):
      mean = [column(v).mean() for v in values]
      std = [column(v).std(ddof=1) if len(v) > 1 else 0.0 for v in values]
      ax.errorbar(xs, mean, yerr=std, marker="o", ms=4, capsize=2, color=f"C{i}",
                  label=label)
  titles = ("Δ_PT,dMMSE (low: memorises)", "Δ_PT,Ridge (low: generalises)",
            "Δ_PT,dMMSE − Δ_PT,Ridge (> 0: ridge-like)")
  for ax, title in zip(axes, titles):
    ax.set_xscale("log", base=2)
    if finite and any(data.is_infinite(M) for rows in table.values() for M in rows):
      ticks = finite + [infinite_x]
      ax.set_xticks(ticks, [str(m) for m in finite] + ["∞"])
    ax.set(xlabel="task diversity M", title=f"{title}\n({split} tasks)")
  axes[0].set_yscale("log")
  axes[1].set_yscale("log")
  axes[2].set_yscale("symlog", linthresh=1e-3)
  axes[2].axhline(0, color="0.5", lw=0.8)
  axes[0].legend(fontsize=8, title="non-stationarity")
  return finish(fig, path)


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  try:
    for workdir in [FLAGS.workdir] if FLAGS.workdir else FLAGS.workdirs or []:
      workdir_lib.require_run(workdir)
  except workdir_lib.RunDirError as e:
    cli.fail(str(e))
  if FLAGS.workdir:
    for path in plot_run(FLAGS.workdir, FLAGS.out):
      print(path)
    return
  if not (FLAGS.workdirs or FLAGS.sweep_dir):
    cli.fail("give --workdir (one run), --workdirs or --sweep_dir (a sweep).")
  if FLAGS.sweep_dir and not os.path.isdir(FLAGS.sweep_dir):
    cli.fail(f"--sweep_dir={FLAGS.sweep_dir} does not exist.")
  runs = list(FLAGS.workdirs or []) + (find_runs(FLAGS.sweep_dir) if FLAGS.sweep_dir else [])
  if not runs:
    cli.fail(f"no runs (directories with config.json) under --sweep_dir={FLAGS.sweep_dir}.")
  out = FLAGS.out or os.path.join(FLAGS.sweep_dir or ".", "phase.png")
  path = plot_phase_diagram(runs, out, FLAGS.split)
  if not path:
    cli.fail("no run has Δ_PT summaries yet: nothing to plot.")
  print(path)
  if FLAGS.markdown:
    print(summary_markdown(runs))


def define_flags():
  flags.DEFINE_string("workdir", None, "One run: write its figures.")
  flags.DEFINE_list("workdirs", None, "Several runs: the phase diagram.")
  flags.DEFINE_string("sweep_dir", None, "Phase diagram of every run below.")
  flags.DEFINE_string("out", None, "Output directory (one run) or PNG (sweep).")
  flags.DEFINE_enum("split", "train", ["train", "test"], "Tasks of the Δ_PT.")
  flags.DEFINE_bool("markdown", False, "Sweep: also print a mean ± std table.")


if __name__ == "__main__":
  define_flags()  # only as a program: importing never defines flags
  app.run(main)
