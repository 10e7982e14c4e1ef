"""Prior-tracking snapshots (temporal_icl.measurements.methods.snapshot_file) at `snapshot_steps`.

Each snapshot holds PMC samples of the implicit prior, the task set, the latest
training loss and Δ_PT on a fresh current-task batch; with `dense_snapshot_period`
they are also taken densely in a window or after each resampling event.
snapshots.npz is rewritten with every checkpoint, so it always matches the
latest one, and a resumed run retakes the snapshots after it identically.
Needs a probabilistic head.
"""

import jax
import jax.numpy as jnp

from temporal_icl import measurements
from temporal_icl.common import metric_names as names
from temporal_icl.common import workdir as workdir_lib
from temporal_icl.core import data
from temporal_icl.core import experiment
from temporal_icl.core import heads
from temporal_icl.measurements.methods import error_metrics
from temporal_icl.measurements.methods import snapshot_file

SNAPSHOT_BATCH_SIZE = 256  # sequences of the per-snapshot Δ_PT batch


class PriorSnapshots(measurements.Measurement):
  """Takes prior-tracking snapshots and keeps snapshots.npz in step with checkpoints."""
  name = "snapshots"
  steps_field = "snapshot_steps"
  artifacts = ("steps", "losses", "tasks", "pr", "delta_dmmse", "delta_ridge")

  def __init__(self, context):
    c = self._config = context.config
    exp = self._exp = context.experiment
    self._is_lead = context.is_lead
    self.files, self.steps, self._num_tasks = [], [], []
    for run in context.runs:
      resample_steps = (exp.schedule.resample_steps(run.initial_state.schedule)
                        if exp.schedule.RESAMPLES else None)
      file = snapshot_file.SnapshotFile(run.workdir, workdir_lib.config_to_json(run.config),
                                        resample_steps)
      file.resume(run.start_step)
      self.files.append(file)
      self.steps.append(snapshot_file.snapshot_steps(
          c, c.num_steps, () if resample_steps is None else resample_steps,
          spec_steps=context.steps(self.steps_field)))
      self._num_tasks.append(
          experiment.training_tasks(exp, run.initial_state.schedule).shape[0])
    self._sample = context.prior_sampler(c.num_pr_samples, c.pr_generation_steps)

  def compute(self, step, state, run, train):
    c, exp = self._config, self._exp
    params, tasks = state.params, experiment.training_tasks(exp, state.schedule)
    sample_key, batch_key = jax.random.split(jax.random.fold_in(run.keys["snapshots"], step))
    xs, ys = data.sample_sequences(batch_key, tasks, SNAPSHOT_BATCH_SIZE, c.K, c.noise_var,
                                   num_tasks=run.num_tasks)
    ridge, dmmse = error_metrics.baselines_of(xs, ys, tasks, c.noise_var, run.num_tasks)
    deltas = error_metrics.split_metrics(
        exp.head.mean(exp.model.apply(params, xs, ys)), ys, ridge, dmmse, D=c.D,
        prompt_length=c.delta_prompt_length, tail_start=None)
    # Before any step (last loss NaN), the loss of the first batch.
    last_loss = train[names.TRAIN_LOSS]
    first = exp.loss(params, *experiment.training_batch(exp, run, state.schedule, step))
    return {"steps": step, "losses": jnp.where(jnp.isnan(last_loss), first, last_loss),
            "tasks": tasks, "pr": self._sample(params, sample_key),
            "delta_dmmse": deltas[names.delta(names.DMMSE)],
            "delta_ridge": deltas[names.delta(names.RIDGE)]}

  def save_artifacts(self, step, index, outputs):
    outputs = dict(outputs, tasks=outputs["tasks"][:self._num_tasks[index]])  # its own M
    self.files[index].add(**outputs)

  def on_checkpoint(self, step, index):
    del step
    if self._is_lead:
      self.files[index].write()


def _problems_when_on(config):
  c = config
  found = heads.sampling_problems(c, "snapshot_steps")
  if c.num_pr_samples < 1:
    found.append(f"config.num_pr_samples={c.num_pr_samples} must be >= 1.")
  if c.K > 0 and not 1 <= c.pr_generation_steps <= c.K:
    found.append(f"config.pr_generation_steps={c.pr_generation_steps} must lie in "
                 f"[1, K={c.K}] (rollouts cannot exceed the model's context).")
  if c.dense_snapshot_period is not None and c.dense_snapshot_period <= 0:
    found.append(f"config.dense_snapshot_period={c.dense_snapshot_period} must be "
                 "positive (or None for no dense snapshots).")
  start, end = c.dense_step_start, c.dense_step_end
  if (start is None) != (end is None):
    found.append(f"config.dense_step_start={start} and config.dense_step_end={end} "
                 "must be set together.")
  elif start is not None and not 0 <= start < end:
    found.append(f"config.dense_step_start={start} must satisfy 0 <= start < "
                 f"config.dense_step_end={end}.")
  if start is not None and c.dense_snapshot_period is None:
    found.append("config.dense_step_start/end need config.dense_snapshot_period to take "
                 "dense snapshots.")
  return found


def problems(config):
  return measurements.spec_problems(config, "snapshot_steps", _problems_when_on)


build = measurements.when_on(PriorSnapshots)
