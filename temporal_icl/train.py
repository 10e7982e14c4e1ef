"""Training: state, a data-parallel multi-step update, measurements and checkpoints.

The update is written once per device and mapped over a 1-D mesh of all devices
with `jax.shard_map` (pmap semantics): each device draws its shard of the global
batch — example i of step s always comes from `fold_in(fold_in(data_key, s), i)`
— and gradients are averaged with `lax.pmean` over the 'batch' axis.  The state
stays one replicated global array, so orbax saves it directly and results do
not depend on the device count.

Between two measurement steps the host dispatches a single call that runs the
steps in a `lax.fori_loop` whose trip count is traced: one compile for all chunk
lengths.  The measurements (temporal_icl.measurements) are built from the config
and called with the state at their steps; every random stream has its own key
(temporal_icl.streams), so turning a measurement on or off never changes the
training trajectory.
"""

import json
import os
import signal
import threading
import time
from typing import Callable, Optional

from absl import logging
from clu import metric_writers
from clu import periodic_actions
import gin
import jax
from jax import lax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import ml_collections
import numpy as np
import optax

from temporal_icl import experiment
from temporal_icl import measurements as measurements_lib
from temporal_icl import multihost
from temporal_icl import renamed_fields
from temporal_icl import step_specs
from temporal_icl import validation
from temporal_icl import workdir as workdir_lib
from temporal_icl.measurements import evaluation as eval_measurement

# Fields that may differ when resuming a run (everything else must match).
RESUMABLE_CHANGES = ("num_steps", "force_restart")


def make_mesh() -> Mesh:
  return Mesh(np.asarray(jax.devices()), ("batch",))


def make_multi_step(exp: experiment.Experiment, mesh: Mesh) -> Callable:
  """Returns f(state, num_steps, loss_sum) -> (state, loss_sum, last loss), jitted once.

  Runs `num_steps` (a traced int) training steps data-parallel over `mesh`,
  adding each step's loss to `loss_sum` (float32 []), so that several calls sum
  exactly as one call would.
  """
  c = exp.config
  local_batch = c.batch_size // mesh.size
  schedule_key = experiment.stream_key(c.seed, "schedule_steps")

  def one_step(state: experiment.TrainState):
    sched = exp.schedule.update(state.schedule, state.step,
                                jax.random.fold_in(schedule_key, state.step))
    start = lax.axis_index("batch") * local_batch
    xs, ys = experiment.training_batch(exp, sched, state.step, batch_size=local_batch,
                                       start=start)
    loss, grads = jax.value_and_grad(exp.loss)(state.params, xs, ys)
    grads, loss = lax.pmean((grads, loss), "batch")
    updates, opt_state = exp.optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return experiment.TrainState(state.step + 1, params, opt_state, sched), loss

  def per_device(state, num_steps, loss_sum):
    def body(_, carry):
      state, total, _ = carry
      state, loss = one_step(state)
      return state, total + loss, loss
    zero = jnp.zeros((), jnp.float32)
    return lax.fori_loop(0, num_steps, body, (state, loss_sum, zero))

  mapped = jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(), P()),
                         out_specs=(P(), P(), P()))
  return jax.jit(mapped, donate_argnums=0)


class Diverged(RuntimeError):
  """The training loss or the parameters stopped being finite."""


def _all_finite(params) -> bool:
  return bool(jax.tree.reduce(lambda a, b: a & b,
                              jax.tree.map(lambda x: jnp.all(jnp.isfinite(x)), params)))


class StopRequest:
  """Turns SIGTERM / SIGINT into a request to checkpoint and exit.

  A second SIGINT raises KeyboardInterrupt at once for the impatient.
  """

  def __init__(self):
    self._event = threading.Event()
    self.signal_name = None

  def install(self):
    if threading.current_thread() is not threading.main_thread():
      return self
    def handler(signum, _):
      if self._event.is_set() and signum == signal.SIGINT:
        raise KeyboardInterrupt
      self.signal_name = signal.Signals(signum).name
      logging.warning("%s received: saving a checkpoint, then exiting.", self.signal_name)
      self._event.set()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return self

  def __call__(self, step: int) -> bool:
    return self._event.is_set()


def _write_run_description(writer, workdir: str, config) -> None:
  flat = workdir_lib._flatten(json.loads(workdir_lib.config_to_json(config)))
  writer.write_hparams({k: (v if isinstance(v, (int, float, str, bool)) else str(v))
                        for k, v in flat.items()})
  operative = gin.operative_config_str()
  with open(os.path.join(workdir, "operative_config.gin"), "w") as f:
    f.write(operative)
  writer.write_texts(0, {"config": "```\n" + workdir_lib.config_to_json(config) + "\n```",
                         "gin/operative_config": "```\n" + operative + "\n```"})


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       should_stop: Optional[Callable[[int], bool]] = None,
                       max_chunk_seconds: float = 10.0) -> Optional[experiment.TrainState]:
  """Trains (or resumes) the run of `config` in `workdir`; returns the final state.

  A run that has finished (its FINISHED file, and the same config) is not touched:
  nothing is trained or written, and the state of its final checkpoint is returned
  (None when keep_final_checkpoint=False removed it).

  Args:
    config: the experiment (see configs/base.py).
    workdir: run directory; holds config.json, checkpoints and summaries.
    should_stop: called after each chunk with the step reached; returning True
      checkpoints and returns early (as on SIGTERM).  Defaults to a SIGTERM /
      SIGINT handler.
    max_chunk_seconds: the longest a single device call may run (measured speed
      sets its step count), which bounds how long a stop request waits.
  """
  for message in renamed_fields.upgrade(config):
    logging.warning(message)
  # Every check that can fail on a user mistake runs before the workdir is touched.
  validation.validate(config, jax.device_count())
  c = config
  experiment.parse_gin(c)
  exp = experiment.build(c)
  eval_measurement.eval_dataset(c)  # a held-out set of the wrong K or D
  if jax.process_index() == 0:
    workdir_lib.check_not_running(workdir)  # before force_restart may empty it
  if workdir_lib.finished_as(workdir, config):
    logging.info("%s already finished its %d steps; nothing to do.", workdir, c.num_steps)
    return _final_state(exp, workdir)
  workdir_lib.prepare(workdir, config, RESUMABLE_CHANGES)
  multihost.sync("workdir prepared")  # process 0 may have emptied or written it
  workdir_lib.lock(workdir)
  try:
    return _train(exp, workdir, should_stop, max_chunk_seconds)
  finally:
    workdir_lib.unlock(workdir)


def _final_state(exp: experiment.Experiment, workdir: str):
  """The final checkpoint of a finished run, read without writing (None if removed)."""
  if not os.path.isdir(os.path.join(workdir, workdir_lib.CHECKPOINTS_DIR)):
    return None
  like = jax.device_put(experiment.init_state(exp), NamedSharding(make_mesh(), P()))
  with workdir_lib.checkpoint_manager(workdir) as manager:
    return workdir_lib.restore(manager, manager.latest_step(), like)


def _train(exp: experiment.Experiment, workdir: str,
           should_stop: Optional[Callable[[int], bool]],
           max_chunk_seconds: float) -> experiment.TrainState:
  """The loop of train_and_evaluate, in a prepared and locked workdir."""
  c = exp.config
  mesh = make_mesh()
  state = jax.device_put(experiment.init_state(exp), NamedSharding(mesh, P()))
  manager = workdir_lib.checkpoint_manager(workdir)
  restored = workdir_lib.restore_latest(manager, state)
  if restored is not None:
    state = restored
  start = int(state.step)
  T = c.num_steps
  logging.info("%s at step %d of %d on %d device(s).", "Resuming" if start else
               "Starting", start, T, mesh.size)

  should_stop = should_stop or StopRequest().install()
  is_lead = jax.process_index() == 0
  writer = metric_writers.create_default_writer(workdir, just_logging=not is_lead)
  multi_step = make_multi_step(exp, mesh)
  progress = periodic_actions.ReportProgress(num_train_steps=T, writer=writer,
                                             every_secs=15.0)
  measurements = measurements_lib.build_all(measurements_lib.Context(
      config=c, experiment=exp, writer=writer, workdir=workdir, state=state,
      start_step=start, is_lead=is_lead))
  actions = [periodic_actions.PeriodicCallback(on_steps=m.steps,
                                               callback_fn=_timed(m, progress))
             for m in measurements]
  # The last step is always checkpointed: a finished run's final state is kept (unless
  # keep_final_checkpoint=False), and snapshots.npz is written with it.
  checkpoint_steps = set(step_specs.parse(c.checkpoint_steps, T, include_zero=False)) | {T}

  def checkpoint(step: int, state: experiment.TrainState):
    with progress.timed("checkpoint"):
      workdir_lib.save(manager, step, state)
      for m in measurements:
        if hasattr(m, "on_checkpoint"):
          m.on_checkpoint(step)

  boundaries = sorted(checkpoint_steps.union(*(m.steps for m in measurements)))
  last_loss = None  # training loss of the last step taken
  with metric_writers.ensure_flushes(writer):
    if start == 0:
      if is_lead:
        _write_run_description(writer, workdir, c)
      for action in actions:
        action(0, state=state, last_loss=None)
    progress(start)
    step = start
    sizer = ChunkSizer(max_chunk_seconds)
    for boundary in (b for b in boundaries if b > start):
      # Run to the next boundary in chunks of at most ~max_chunk_seconds, so that a
      # stop request is answered quickly; chunking never changes the trajectory.
      interval_start, loss_sum = step, jnp.zeros((), jnp.float32)
      while step < boundary:
        n = min(boundary - step, sizer.steps)
        started = time.perf_counter()
        state, loss_sum, last = multi_step(state, jnp.asarray(n, jnp.int32), loss_sum)
        finite = np.isfinite(float(loss_sum))  # float() waits for the chunk
        sizer.observe(n, time.perf_counter() - started)
        step += n
        if not (finite and _all_finite(state.params)):
          manager.wait_until_finished()
          raise Diverged(_divergence_message(step - n, step, manager.latest_step(), c))
        if step < boundary:
          progress(step)
          if multihost.any_process(should_stop(step)):
            # A resumed run then writes, at the next boundary, the mean loss of
            # the steps after this one only.
            return _stop(step, state, checkpoint, manager, measurements, T)
      last_loss = float(last)
      mean = float(loss_sum / jnp.float32(step - interval_start))
      writer.write_scalars(step, {"train_loss": mean})
      progress(step)
      for action in actions:
        action(step, state=state, last_loss=last_loss)
      if step in checkpoint_steps:
        checkpoint(step, state)
      # Every host must agree, or one would enter the collective checkpoint alone.
      if step < T and multihost.any_process(should_stop(step)):
        return _stop(step, state, checkpoint, manager, measurements, T)
    manager.wait_until_finished()
    _close(measurements)
  workdir_lib.mark_finished(workdir, T)
  if not c.keep_final_checkpoint:
    workdir_lib.remove_checkpoints(manager, workdir)
  return state


def _close(measurements):
  for m in measurements:
    if hasattr(m, "close"):
      m.close()


def _stop(step, state, checkpoint, manager, measurements, T):
  checkpoint(step, state)
  manager.wait_until_finished()
  _close(measurements)  # e.g. trajectory states still being written
  logging.warning("Stopped at step %d of %d; rerun the same command to resume.", step, T)
  return state


def _divergence_message(first, last, good, config) -> str:
  saved = "none (no checkpoint yet)" if good is None else f"step {good}"
  return (f"training diverged: the loss or the parameters became NaN or infinite "
          f"between steps {first} and {last}. Nothing after step {first} was saved; "
          f"the last good checkpoint is {saved}. Lower config.learning_rate (now "
          f"{config.learning_rate:g}) and rerun with --config.force_restart=True.")


class ChunkSizer:
  """How many steps the next device call may run so that it lasts ≲ max_seconds.

  The first call (which compiles) runs a few steps and is not timed.  Processes
  agree on the size (the smallest), so they check for stop requests together.
  """
  FIRST = 16

  def __init__(self, max_seconds: float):
    self.max_seconds = max_seconds
    self.steps = self.FIRST
    self._calls = 0

  def observe(self, steps: int, seconds: float) -> None:
    self._calls += 1
    if self._calls > 1:
      proposal = max(1, int(self.max_seconds * steps / max(seconds, 1e-9)))
      self.steps = multihost.min_over_processes(min(proposal, 2**30))


def _timed(measurement, progress):
  """The measurement as a PeriodicCallback function, its time reported under its name."""
  def callback(step, t, state, last_loss):
    del t
    with progress.timed(measurement.name):
      measurement(step, state, last_loss)
  return callback
