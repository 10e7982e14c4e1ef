r"""Essential dynamics: a joint PCA of the functions several runs pass through.

  python -m temporal_icl.analysis.essential_dynamics --workdirs=runs/a,runs/b --out=ed.png

As in Carroll et al. ("Dynamics of Transient Structure in In-Context Linear
Regression Transformers"): fix a probe set of B sequences; the model saved at
each step of a run, applied to the probe set, gives K predictions per sequence —
one row of length B·K.  The rows of every run are mean-centred together and their
SVD gives the principal directions; each run's trajectory, and the dMMSE and
ridge predictions on the same probe set (projected, not used to fit), are drawn in
the plane of the first two components.

The models are the states a run kept in `trajectory/` (set
`--config.trajectory_steps='log:32'` when training); a run that kept none is
refused in one sentence (its resume checkpoints are too few and too late to trace
a development).  All runs must share D, K and noise_var.  Writes the figure
and, beside it, an .npz with the projections.
"""

import os
from typing import Dict, Sequence

from absl import app
from absl import flags
import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from temporal_icl.common import cli
from temporal_icl.common import workdir as workdir_lib
from temporal_icl.core import baselines
from temporal_icl.core import data
from temporal_icl.core import experiment
from temporal_icl.measurements.methods import error_metrics


def probe_set(D: int, K: int, noise_var: float, size: int, seed: int = 0):
  """The fixed probe sequences: xs [B, K, D], ys [B, K], tasks from N(0, I_D)."""
  return data.sample_sequences(jax.random.PRNGKey(seed), data.infinite_task_set(D), size,
                               K, noise_var)


def run_trajectory(workdir: str, xs, ys) -> Dict[str, np.ndarray]:
  """Point predictions of every saved state of one run on the probe set.

  Returns steps [N], rows [N, B·K], and dmmse [B·K] (the dMMSE predictions with
  the run's task set at its last saved step; ridge is shared by all runs).
  """
  config = workdir_lib.load_config(workdir)
  experiment.parse_gin(config)
  exp = experiment.build(config)
  like = experiment.init_state(exp)
  if not os.path.isdir(os.path.join(workdir, workdir_lib.TRAJECTORY_DIR)):
    raise workdir_lib.RunDirError(
        f"{workdir} kept no trajectory states; train it with e.g. "
        "--config.trajectory_steps=log:32 (its few checkpoints are not a trajectory).")
  manager = workdir_lib.trajectory_manager(workdir)
  steps = sorted(manager.all_steps())
  if len(steps) < 2:
    raise workdir_lib.RunDirError(f"{workdir} kept {len(steps)} trajectory state(s); "
                                  "a trajectory needs at least 2.")
  predict = jax.jit(lambda p: exp.head.mean(exp.model.apply(p, xs, ys)).reshape(-1))
  rows, state = [], None
  for step in steps:
    state = workdir_lib.restore(manager, step, like)
    rows.append(np.asarray(predict(state.params)))
  tasks = experiment.training_tasks(exp, state.schedule)
  _, dmmse = error_metrics.baselines_of(xs, ys, tasks, config.noise_var)
  return {"steps": np.asarray(steps), "rows": np.stack(rows),
          "dmmse": np.asarray(dmmse).reshape(-1)}


def joint_pca(rows: np.ndarray, n_components: int = 2):
  """Mean, principal directions [C, B·K] and explained variance ratios [C]."""
  mean = rows.mean(0)
  _, singular, directions = np.linalg.svd(rows - mean, full_matrices=False)
  variance = singular**2 / max((singular**2).sum(), 1e-30)
  return mean, directions[:n_components], variance[:n_components]


def essential_dynamics(workdirs: Sequence[str], probe_size: int = 256,
                       n_components: int = 2, seed: int = 0) -> Dict[str, np.ndarray]:
  """Projections of every run and of both Bayes predictors on the joint PCs."""
  configs = [workdir_lib.load_config(w) for w in workdirs]
  shapes = {(c.D, c.K, c.noise_var) for c in configs}
  if len(shapes) != 1:
    raise ValueError(f"The runs must share (D, K, noise_var) to share a probe set; "
                     f"got {sorted(shapes)}.")
  (D, K, noise_var), = shapes
  xs, ys = probe_set(D, K, noise_var, probe_size, seed)
  runs = [run_trajectory(w, xs, ys) for w in workdirs]
  mean, directions, variance = joint_pca(np.concatenate([r["rows"] for r in runs]),
                                         n_components)
  project = lambda v: (v - mean) @ directions.T
  out = {"explained_variance": variance,
         "ridge": project(np.asarray(baselines.ridge(xs, ys, noise_var)).reshape(-1))}
  for i, r in enumerate(runs):
    out[f"run{i}/steps"] = r["steps"]
    out[f"run{i}/projection"] = project(r["rows"])
    out[f"run{i}/dmmse"] = project(r["dmmse"])
  return out


def plot(result: Dict[str, np.ndarray], labels: Sequence[str], path: str) -> str:
  """Each run's path on the first two PCs: its own colour and legend entry, points
  coloured by training step (log scale, colour bar), its dMMSE as ✕, ridge as ★."""
  fig, ax = plt.subplots(figsize=(7.5, 5))
  all_steps = np.concatenate([result[f"run{i}/steps"] for i in range(len(labels))])
  norm = matplotlib.colors.LogNorm(vmin=max(all_steps[all_steps > 0].min(), 1),
                                   vmax=max(all_steps.max(), 2))
  points = None
  for i, label in enumerate(labels):
    p, steps = result[f"run{i}/projection"], result[f"run{i}/steps"]
    ax.plot(p[:, 0], p[:, 1], "-", color=f"C{i}", lw=1.2, label=label)
    points = ax.scatter(p[:, 0], p[:, 1], c=np.maximum(steps, 1), cmap="viridis",
                        norm=norm, s=14, zorder=3, edgecolors=f"C{i}", linewidths=0.6)
    ax.plot(*p[0, :2], "o", mfc="none", color=f"C{i}", ms=9)
    ax.plot(*result[f"run{i}/dmmse"][:2], "X", color=f"C{i}", ms=10,
            label=f"dMMSE of {label}")
  ax.plot(*result["ridge"][:2], "*", color="k", ms=14, label="ridge")
  fig.colorbar(points, ax=ax, label="training step")
  v = result["explained_variance"]
  ax.set(xlabel=f"PC1 ({v[0]:.0%} of variance)", ylabel=f"PC2 ({v[1]:.0%})",
         title="essential dynamics (○ start of each run)")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  if not FLAGS.workdirs:
    cli.fail("--workdirs=a,b,... is required.")
  try:
    for workdir in FLAGS.workdirs:
      workdir_lib.require_run(workdir)
    result = essential_dynamics(FLAGS.workdirs, FLAGS.probe_size,
                                max(FLAGS.n_components, 2))
  except (workdir_lib.RunDirError, ValueError) as e:
    cli.fail(str(e))
  labels = [os.path.basename(os.path.normpath(w)) for w in FLAGS.workdirs]
  print(plot(result, labels, FLAGS.out))
  npz = os.path.splitext(FLAGS.out)[0] + ".npz"
  np.savez(npz, labels=np.asarray(labels), **result)
  print(npz)


if __name__ == "__main__":
  # Flags only as a program: importing this module never defines flags.
  flags.DEFINE_list("workdirs", None, "Runs to project together.")
  flags.DEFINE_string("out", "essential_dynamics.png", "Figure path (.png).")
  flags.DEFINE_integer("probe_size", 256, "Probe sequences B.")
  flags.DEFINE_integer("n_components", 2, "Principal components kept.")
  app.run(main)
