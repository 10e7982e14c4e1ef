"""Training: state, a data-parallel multi-step update, measurements and checkpoints.

The update is written once per device and mapped over a 1-D mesh of all devices
with `jax.shard_map` (pmap semantics): each device draws its shard of the global
batch — example i of step s always comes from `fold_in(fold_in(data_key, s), i)`
— and gradients are averaged with `lax.pmean` over the 'batch' axis.  The state
stays one replicated global array, so orbax saves it directly and results do
not depend on the device count.

Between two measurement steps the host dispatches a single call that runs the
steps in a `lax.fori_loop` whose trip count is traced: one compile for all chunk
lengths.  Every random stream has its own key (see `STREAMS`), so turning a
measurement on or off never changes the training trajectory.
"""

import json
import os
import signal
import threading
from typing import Any, Callable, NamedTuple, Optional

from absl import logging
from clu import metric_writers
from clu import periodic_actions
import gin
import haiku as hk
import jax
from jax import lax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import ml_collections
import numpy as np
import optax

from temporal_icl import data
from temporal_icl import evaluation
from temporal_icl import heads
from temporal_icl import measurements
from temporal_icl import model as model_lib
from temporal_icl import multihost
from temporal_icl import schedules
from temporal_icl import snapshots as snapshots_lib
from temporal_icl import step_specs
from temporal_icl import streams
from temporal_icl import validation
from temporal_icl import workdir as workdir_lib

# Fields that may differ when resuming a run (everything else must match).
RESUMABLE_CHANGES = ("num_steps", "force_restart")
stream_key = streams.key


class TrainState(NamedTuple):
  step: jax.Array  # int32 [], number of updates done
  params: Any  # haiku parameters
  opt_state: Any  # optax state
  schedule: Any  # the schedule module's State (task set and its bookkeeping)


def learning_rate(config: ml_collections.ConfigDict) -> optax.Schedule:
  """Linear warm-up from 0 over the first 10% of steps (if enabled), then constant;
  with lr_decay_fraction = f > 0, a linear decay to 0 over the last f·T steps.

  The paper trains at a constant rate after warm-up (f = 0).
  """
  T = config.num_steps
  warmup_steps = int(0.1 * T) if config.lr_warmup else 0
  decay_steps = int(round(config.lr_decay_fraction * T))
  peak = config.learning_rate
  pieces, boundaries = [optax.constant_schedule(peak)], []
  if warmup_steps:
    pieces.insert(0, optax.linear_schedule(0.0, peak, warmup_steps))
    boundaries.append(warmup_steps)
  if decay_steps:
    pieces.append(optax.linear_schedule(peak, 0.0, decay_steps))
    boundaries.append(T - decay_steps)
  return optax.join_schedules(pieces, boundaries) if boundaries else pieces[0]


class Experiment(NamedTuple):
  """The pieces a run is built from, all derived from the config."""
  config: ml_collections.ConfigDict
  model: hk.Transformed
  head: Any
  schedule: Any  # a module of temporal_icl.schedules
  optimizer: optax.GradientTransformation
  lr: optax.Schedule


def build(config: ml_collections.ConfigDict) -> Experiment:
  lr = learning_rate(config)
  return Experiment(
      config=config,
      model=model_lib.make_model(config),
      head=heads.get_head(config.head, config.noise_var, config.num_components),
      schedule=schedules.get(config.schedule),
      optimizer=optax.adam(lr),
      lr=lr)


def training_tasks(exp: Experiment, schedule_state):
  """The current task set [M, D], or None for M = ∞."""
  if data.is_infinite(exp.config.M):
    return None
  return exp.schedule.current_tasks(schedule_state)


def training_batch(exp: Experiment, schedule_state, step, *, batch_size=None, start=0):
  """The batch of training step `step` drawn from the given task set: xs, ys."""
  c = exp.config
  key = jax.random.fold_in(stream_key(c.seed, "data"), step)
  return data.sample_sequences(key, training_tasks(exp, schedule_state),
                               batch_size or c.batch_size, c.K, c.noise_var,
                               D=c.D, start=start)


def init_state(exp: Experiment) -> TrainState:
  c = exp.config
  schedule_state = exp.schedule.init(stream_key(c.seed, "tasks"), c)
  xs, ys = training_batch(exp, schedule_state, 0, batch_size=1)
  params = exp.model.init(stream_key(c.seed, "params"), xs, ys)
  return TrainState(jnp.zeros((), jnp.int32), params, exp.optimizer.init(params),
                    schedule_state)


def make_mesh() -> Mesh:
  return Mesh(np.asarray(jax.devices()), ("batch",))


def make_multi_step(exp: Experiment, mesh: Mesh) -> Callable:
  """Returns f(state, num_steps) -> (state, mean loss, last loss), jitted once.

  Runs `num_steps` (a traced int) training steps data-parallel over `mesh`.
  """
  c = exp.config
  local_batch = c.batch_size // mesh.size
  schedule_key = stream_key(c.seed, "schedule_steps")

  def loss_fn(params, xs, ys):
    return heads.loss(exp.head, exp.model.apply(params, xs, ys), ys)

  def one_step(state: TrainState):
    sched = exp.schedule.update(state.schedule, state.step,
                                jax.random.fold_in(schedule_key, state.step))
    start = lax.axis_index("batch") * local_batch
    xs, ys = training_batch(exp, sched, state.step, batch_size=local_batch, start=start)
    loss, grads = jax.value_and_grad(loss_fn)(state.params, xs, ys)
    grads, loss = lax.pmean((grads, loss), "batch")
    updates, opt_state = exp.optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(state.step + 1, params, opt_state, sched), loss

  def per_device(state, num_steps):
    def body(_, carry):
      state, total, _ = carry
      state, loss = one_step(state)
      return state, total + loss, loss
    zero = jnp.zeros((), jnp.float32)
    state, total, last = lax.fori_loop(0, num_steps, body, (state, zero, zero))
    return state, total / jnp.maximum(num_steps, 1), last

  mapped = jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P()),
                         out_specs=(P(), P(), P()))
  return jax.jit(mapped, donate_argnums=0)


def measurement_steps(every: int, num_steps: int, *, include_zero: bool = True):
  """Steps {0 (optional), every, 2·every, ..., num_steps} at which an action runs."""
  if every <= 0:
    return set()
  steps = set(range(0 if include_zero else every, num_steps + 1, every))
  steps.add(num_steps)
  return steps


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


def _parse_gin(config: ml_collections.ConfigDict) -> None:
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  files = [f if os.path.exists(f) else os.path.join(root, f) for f in config.gin_files]
  gin.clear_config()
  gin.parse_config_files_and_bindings(files, list(config.gin_bindings))


def _write_run_description(writer, workdir: str, config) -> None:
  flat = workdir_lib._flatten(json.loads(workdir_lib.config_to_json(config)))
  writer.write_hparams({k: (v if isinstance(v, (int, float, str, bool)) else str(v))
                        for k, v in flat.items()})
  operative = gin.operative_config_str()
  with open(os.path.join(workdir, "operative_config.gin"), "w") as f:
    f.write(operative)
  writer.write_texts(0, {"config": "```\n" + workdir_lib.config_to_json(config) + "\n```",
                         "gin/operative_config": "```\n" + operative + "\n```"})


def _eval_dataset(c):
  """The TFDS held-out set of config.eval_dataset as (xs, ys), or None."""
  if not c.eval_dataset:
    return None
  from temporal_icl.datasets import iclr_eval  # pylint: disable=g-import-not-at-top
  try:
    xs, ys = iclr_eval.load_eval_batch(c.eval_dataset, c.eval_data_dir or None)
  except ValueError as e:
    raise validation.ConfigError([f"config.eval_dataset={c.eval_dataset!r}: {e}"]) from None
  if xs.shape[1:] != (c.K, c.D):
    raise validation.ConfigError([
        f"config.eval_dataset={c.eval_dataset!r} holds sequences of K={xs.shape[1]} "
        f"pairs in D={xs.shape[2]}, but the run has K={c.K}, D={c.D}."])
  return xs, ys


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       should_stop: Optional[Callable[[int], bool]] = None) -> TrainState:
  """Trains (or resumes) the run of `config` in `workdir`; returns the final state.

  Args:
    config: the experiment (see configs/base.py).
    workdir: run directory; holds config.json, checkpoints and summaries.
    should_stop: called after each chunk with the step reached; returning True
      checkpoints and returns early (as on SIGTERM).  Defaults to a SIGTERM /
      SIGINT handler.
  """
  validation.validate(config, jax.device_count())
  workdir_lib.prepare(workdir, config, RESUMABLE_CHANGES)
  multihost.sync("workdir prepared")  # process 0 may have emptied or written it
  c = config
  _parse_gin(c)
  exp = build(c)
  mesh = make_mesh()
  state = jax.device_put(init_state(exp), NamedSharding(mesh, P()))
  manager = workdir_lib.checkpoint_manager(workdir)
  restored = workdir_lib.restore_latest(manager, state)
  if restored is not None:
    state = restored
  start = int(state.step)
  T = c.num_steps
  if start >= T and workdir_lib.is_finished(workdir):
    logging.info("%s already finished %d steps; nothing to do.", workdir, T)
    return state
  logging.info("%s at step %d of %d on %d device(s).", "Resuming" if start else
               "Starting", start, T, mesh.size)

  should_stop = should_stop or StopRequest().install()
  is_lead = jax.process_index() == 0
  writer = metric_writers.create_default_writer(workdir, just_logging=not is_lead)
  multi_step = make_multi_step(exp, mesh)
  evaluator = evaluation.Evaluator(c, exp.model.apply, exp.head,
                                   stream_key(c.seed, "test_set"), _eval_dataset(c))
  progress = periodic_actions.ReportProgress(num_train_steps=T, writer=writer,
                                             every_secs=15.0)
  loss_fn = jax.jit(lambda params, xs, ys: heads.loss(exp.head, exp.model.apply(
      params, xs, ys), ys))
  latest_loss = None  # training loss of the last step taken

  def current_tasks():
    tasks = training_tasks(exp, state.schedule)
    return jnp.zeros((0, c.D)) if tasks is None else tasks

  def evaluate(step: int, t: float = None):
    with progress.timed("eval"):
      xs, ys = training_batch(exp, state.schedule, max(step - 1, 0))
      metrics = evaluator(state.params, training_tasks(exp, state.schedule), xs, ys)
      metrics["lr"] = float(exp.lr(step))
      writer.write_scalars(step, metrics)

  schedule = {evaluate: measurement_steps(c.eval_every, T)}  # callback -> its steps

  if c.energy_distance_every:
    energy_distance = measurements.EnergyDistance(c, writer)

    def measure_energy_distance(step: int, t: float = None):
      with progress.timed("energy_distance"):
        energy_distance(step, state.params, current_tasks())
    schedule[measure_energy_distance] = measurement_steps(c.energy_distance_every, T)

  prior_snapshots = None
  if c.snapshot_period:
    resample_steps = (exp.schedule.resample_steps(state.schedule)
                      if c.schedule in validation.RESAMPLING_SCHEDULES else None)
    prior_snapshots = measurements.PriorSnapshots(
        c, exp.model.apply, exp.head, workdir, workdir_lib.config_to_json(c),
        resample_steps)
    prior_snapshots.file.resume(start)

    def snapshot(step: int, t: float = None):
      with progress.timed("snapshots"):
        loss = latest_loss
        if loss is None:  # no step taken yet: the loss of the first batch
          loss = float(loss_fn(state.params, *training_batch(exp, state.schedule, step)))
        prior_snapshots(step, state.params, current_tasks(), loss)
    schedule[snapshot] = snapshots_lib.snapshot_steps(
        c, T, () if resample_steps is None else resample_steps)

  llc_steps = set(step_specs.parse(c.llc_steps, T))
  if c.llc_every:
    llc_steps |= measurement_steps(c.llc_every, T)
  if llc_steps:
    local_learning_coefficient = measurements.LocalLearningCoefficient(
        c, exp.model.apply, exp.head, writer)

    def measure_llc(step: int, t: float = None):
      with progress.timed("llc"):
        local_learning_coefficient(step, state.params, current_tasks())
    schedule[measure_llc] = llc_steps

  if c.trajectory_steps:
    trajectory = workdir_lib.trajectory_manager(workdir)

    def keep_state(step: int, t: float = None):
      with progress.timed("trajectory"):
        workdir_lib.save(trajectory, step, state)
    schedule[keep_state] = set(step_specs.parse(c.trajectory_steps, T))

  def checkpoint(step: int, t: float = None):
    with progress.timed("checkpoint"):
      workdir_lib.save(manager, step, state)
      if prior_snapshots is not None and is_lead:
        prior_snapshots.file.write()
  schedule[checkpoint] = measurement_steps(c.checkpoint_every, T, include_zero=False)

  actions = [periodic_actions.PeriodicCallback(on_steps=steps, callback_fn=fn)
             for fn, steps in schedule.items()]
  boundaries = sorted(set().union(*schedule.values()))

  with metric_writers.ensure_flushes(writer):
    if start == 0:
      if is_lead:
        _write_run_description(writer, workdir, c)
      for action in actions:
        action(0)
    progress(start)
    step = start
    for boundary in (b for b in boundaries if b > start):
      state, mean_loss, last_loss = multi_step(
          state, jnp.asarray(boundary - step, jnp.int32))
      step = boundary
      latest_loss = float(last_loss)
      writer.write_scalars(step, {"train_loss": float(mean_loss)})
      progress(step)
      for action in actions:
        action(step)
      # Every host must agree, or one would enter the collective checkpoint alone.
      if step < T and multihost.any_process(should_stop(step)):
        checkpoint(step)
        manager.wait_until_finished()
        logging.warning("Stopped at step %d of %d; rerun the same command to resume.",
                        step, T)
        return state
    manager.wait_until_finished()
    if c.trajectory_steps:
      trajectory.wait_until_finished()
  workdir_lib.mark_finished(workdir, T)
  if not c.keep_final_checkpoint:
    workdir_lib.remove_checkpoints(manager, workdir)
  return state
