"""Prior-tracking snapshots (temporal_icl.snapshots) at `snapshot_steps`.

Each snapshot holds PMC samples of the implicit prior, the task set, the latest
training loss and Δ_PT on a fresh current-task batch; with `dense_snapshot_period`
they are also taken densely in a window or after each resampling event.
snapshots.npz is rewritten with every checkpoint, so it always matches the
latest one, and a resumed run retakes the snapshots after it identically.
Needs a probabilistic head.
"""

import jax

from temporal_icl import baselines
from temporal_icl import data
from temporal_icl import evaluation
from temporal_icl import experiment
from temporal_icl import heads
from temporal_icl import prior
from temporal_icl import snapshots
from temporal_icl import step_specs
from temporal_icl import streams
from temporal_icl import workdir as workdir_lib

SNAPSHOT_BATCH_SIZE = 256  # sequences of the per-snapshot Δ_PT batch


class PriorSnapshots:
  """Takes prior-tracking snapshots and keeps snapshots.npz in step with checkpoints."""
  name = "snapshots"

  def __init__(self, context):
    self._config = c = context.config
    exp = self._exp = context.experiment
    self._is_lead = context.is_lead
    schedule = exp.schedule
    resample_steps = (schedule.resample_steps(context.state.schedule)
                      if getattr(schedule, "RESAMPLES", False) else None)
    self.file = snapshots.SnapshotFile(context.workdir, workdir_lib.config_to_json(c),
                                       resample_steps)
    self.file.resume(context.start_step)
    self.steps = snapshots.snapshot_steps(
        c, c.num_steps, () if resample_steps is None else resample_steps)
    self._sample = prior.make_prior_sampler(c, c.num_pr_samples, c.pr_generation_steps)
    self._loss = jax.jit(exp.loss)

    def deltas(params, tasks, key):
      xs, ys = data.sample_sequences(key, tasks, SNAPSHOT_BATCH_SIZE, c.K, c.noise_var)
      ridge = baselines.ridge(xs, ys, c.noise_var)
      dmmse = ridge if data.is_infinite_set(tasks) else baselines.dmmse(xs, ys, tasks,
                                                                         c.noise_var)
      m = evaluation.split_metrics(exp.head.mean(exp.model.apply(params, xs, ys)), ys,
                                   ridge, dmmse, D=c.D,
                                   prompt_length=c.delta_prompt_length, tail_start=None)
      return m["delta_dmmse"], m["delta_ridge"]

    self._deltas = jax.jit(deltas)

  def __call__(self, step, state, last_loss=None, t=None):
    c, exp = self._config, self._exp
    if last_loss is None:  # no step taken yet: the loss of the first batch
      last_loss = float(self._loss(
          state.params, *experiment.training_batch(exp, state.schedule, step)))
    tasks = experiment.training_tasks(exp, state.schedule)
    sample_key, batch_key = jax.random.split(streams.at_step(c.seed, "snapshots", step))
    delta_dmmse, delta_ridge = self._deltas(state.params, tasks, batch_key)
    self.file.add(steps=step, losses=last_loss, tasks=tasks,
                  pr=self._sample(state.params, sample_key), delta_dmmse=delta_dmmse,
                  delta_ridge=delta_ridge)

  def on_checkpoint(self, step):
    del step
    if self._is_lead:
      self.file.write()


def problems(config):
  c = config
  found = step_specs.problems("snapshot_steps", c.snapshot_steps, c.num_steps)
  if found or not step_specs.parse(c.snapshot_steps, c.num_steps):
    return found
  found += heads.sampling_problems(c, "snapshot_steps")
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


def build(context):
  c = context.config
  return PriorSnapshots(context) if step_specs.parse(c.snapshot_steps, c.num_steps) else None
