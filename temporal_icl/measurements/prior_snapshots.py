"""Prior-tracking snapshots (temporal_icl.snapshots) every `snapshot_period` steps.

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
from temporal_icl import prior
from temporal_icl import snapshots
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


def build(context):
  return PriorSnapshots(context) if context.config.snapshot_period else None
