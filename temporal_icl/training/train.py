"""Training: a group of runs as one data-parallel program, measurements, checkpoints.

A run group (temporal_icl.training.groups) is N runs whose configs share every shape; one
run is a group of one.  Their TrainStates are stacked along a leading run axis,
what distinguishes them (seed, γ, R, learning rate, M) is data (RunData and the
schedule state), and the update is `vmap`ped over the run axis.  That update is
written once per device and mapped over a 1-D mesh of all devices with
`jax.shard_map` (pmap semantics): each device draws its shard of every run's
global batch — example i of step s always comes from `fold_in(fold_in(data_key,
s), i)` — and gradients are averaged with `lax.pmean` over the 'batch' axis (on
one device there is nothing to average).  On CPU each device takes its gradient
over microbatches of at most 2048 tokens (temporal_icl.training.microbatch).  The state
stays one replicated global array, and results do not depend on the device count
beyond float rounding.

Between two measurement steps the host dispatches a single call that runs the
steps in a `lax.fori_loop` whose trip count is traced: one compile for all chunk
lengths.  The step returns (state, metrics) (experiment.step_metrics: loss, rate,
the schedule's metrics); measurements (temporal_icl.measurements) are pure
functions of a run's state that return metrics, vmapped over the group.  The loop
(Trainer) is the only writer: at each measured step it writes the interval's mean
loss and each measurement's outputs, each run's slice to that run's own writer
(RunHandle), and hands host-side artefacts to the measurement's save_artifacts.  Each run keeps its own workdir, with exactly the
files a solo run writes, and its own unpadded checkpoints, so a run trained in a
group resumes alone and the other way round.  Faults are per run: a run whose
loss or parameters stop being finite is marked DIVERGED and frozen (nothing of
it is written any more) while the rest of its group trains on.  Every random
stream has its own key (temporal_icl.core.streams), so turning a measurement on or
off never changes a training trajectory.
"""

import dataclasses
import functools
import json
import os
import signal
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from absl import logging
import gin
import jax
from jax import lax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import ml_collections
import numpy as np
import optax

from temporal_icl.common import metric_names
from temporal_icl.common import step_specs
from temporal_icl.common import workdir as workdir_lib
from temporal_icl.core import experiment
from temporal_icl.core import schedules
from temporal_icl import measurements as measurements_lib
from temporal_icl.measurements import evaluation as eval_measurement
from temporal_icl.training import groups
from temporal_icl.training import microbatch
from temporal_icl.training import multihost
from temporal_icl.training import tensorboard_layout
from temporal_icl.training import validation

# Fields that may differ when resuming a run (everything else must match).
RESUMABLE_CHANGES = ("num_steps", "force_restart")


def make_mesh() -> Mesh:
  return Mesh(np.asarray(jax.devices()), ("batch",))


def over_runs(fn: Callable, size: int) -> Callable:
  """`fn` of one run's arrays, mapped over the leading run axis of `size` runs.

  A group of one is not vmapped but indexed: XLA's CPU backend lowers some
  reductions over [1, R, E] arrays (a vmap of size 1) ~50x slower than over
  [R, E] (1.6 ms against 29 µs for R = 2048, E = 64; measured 2026-12-01), which
  made a vmapped solo run 2.3x slower.  Both give the same numbers.
  """
  if size > 1:
    return jax.vmap(fn)
  def one(*args):
    out = fn(*(groups.take(a, 0) for a in args))
    return jax.tree.map(lambda x: x[None], out)
  return one


def make_multi_step(exp: experiment.Experiment, mesh: Mesh, size: int,
                    microbatches: Optional[int] = None) -> Callable:
  """Returns f(states, runs, num_steps, loss_sums) -> (states, loss_sums, metrics).

  The metrics (experiment.step_metrics, each [N]) are the last step's, or with
  num_steps = 0 those of the states as given (loss NaN), which the loop measures
  step 0 with.  The loop writes the mean loss of an interval (loss_sums over its
  steps) and takes the other metrics of its last step.

  states: the group's stacked TrainState [N, ...] (N = size); runs: its stacked
  RunData; num_steps: a traced int; loss_sums: float32 [N], to which each step's
  loss is added, so that several calls sum exactly as one call would.  Each
  device's gradient is taken over `microbatches` equal parts of its batch
  (default: `microbatch.count` for this size, group and platform).  Jitted once.
  """
  c = exp.config
  local_batch = c.batch_size // mesh.size
  if microbatches is None:
    microbatches = microbatch.count(local_batch, 2 * c.K, size, mesh.devices.flat[0].platform)

  def one_step(state: experiment.TrainState, run: experiment.RunData):
    """One update of one run (vmapped over the group)."""
    sched = exp.schedule.update(state.schedule, state.step,
                                jax.random.fold_in(run.keys["schedule_steps"], state.step))
    start = lax.axis_index("batch") * local_batch
    xs, ys = experiment.training_batch(exp, run, sched, state.step, batch_size=local_batch,
                                       start=start)
    params = state.params
    if mesh.size > 1:
      # Differentiate this device's own copy: the gradient with respect to the
      # replicated parameters would already be summed over the devices (the
      # transpose of their implicit broadcast), and pmean would keep that sum.
      params = lax.pcast(params, "batch", to="varying")
    loss, grads = microbatch.value_and_grad(exp.loss, params, xs, ys, microbatches)
    if mesh.size > 1:  # XLA's CPU all-reduce of one device still costs ~2.5% of a step
      grads, loss = lax.pmean((grads, loss), "batch")
    updates, opt_state = exp.optimizer(run.learning_rate).update(
        grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    state = experiment.TrainState(state.step + 1, params, opt_state, sched)
    return state, experiment.step_metrics(exp, state, run, loss)

  group_step = over_runs(one_step, size)
  before_steps = over_runs(functools.partial(experiment.step_metrics, exp), size)

  def per_device(states, runs, num_steps, loss_sums):
    def body(_, carry):
      states, totals, _ = carry
      states, metrics = group_step(states, runs)
      return states, totals + metrics[metric_names.TRAIN_LOSS], metrics
    return lax.fori_loop(0, num_steps, body,
                         (states, loss_sums, before_steps(states, runs)))

  # On one device nothing is averaged, so the values' device-varying type (which
  # only pmean makes replicated again) is not checked.
  mapped = jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(), P(), P()),
                         out_specs=(P(), P(), P()), check_vma=mesh.size > 1)
  return jax.jit(mapped, donate_argnums=0)


class Diverged(RuntimeError):
  """The training loss or the parameters of a run stopped being finite."""


@jax.jit
def _all_finite(params) -> jax.Array:
  per_leaf = [jnp.all(jnp.isfinite(x), axis=tuple(range(1, x.ndim)))
              for x in jax.tree.leaves(params)]
  return jnp.stack(per_leaf).all(0)


def _finite_per_run(params) -> np.ndarray:
  """bool [N]: every parameter of run i is finite."""
  return np.asarray(_all_finite(params))


class StopRequest:
  """Turns SIGTERM / SIGINT into a request to checkpoint and exit: `requested` is
  True once one arrived (a should_stop is then `lambda step: stop.requested`).

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

  @property
  def requested(self) -> bool:
    return self._event.is_set()


@dataclasses.dataclass
class Run:
  """One run of a group, on the host: where it writes and how far it got."""
  name: str
  config: ml_collections.ConfigDict
  workdir: str
  like: Optional[experiment.TrainState] = None  # its own (unpadded) initial state
  diverged: Optional[str] = None  # the message, once it has diverged


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

  Raises:
    validation.ConfigError, workdir_lib.ResumeError: a user mistake (one sentence each).
    Diverged: the run diverged (DIVERGED in its workdir holds the message).
  """
  return train_group([config], [workdir], should_stop=should_stop,
                     max_chunk_seconds=max_chunk_seconds)[0]


def train_group(configs: Sequence[ml_collections.ConfigDict], workdirs: Sequence[str], *,
                names: Optional[Sequence[str]] = None,
                should_stop: Optional[Callable[[int], bool]] = None,
                max_chunk_seconds: float = 10.0) -> List[Optional[experiment.TrainState]]:
  """Trains (or resumes) the runs `configs` as one group, run i in `workdirs[i]`.

  Each run's workdir ends as the same run trained alone would leave it.  Finished
  runs are skipped (their final state is returned, as by train_and_evaluate); runs
  resume from their own checkpoints, those at the same step together.  A run that
  diverges is marked and frozen while the others go on; Diverged is raised once
  they are done.

  Returns:
    The final state of each run (None where keep_final_checkpoint=False removed it).
  """
  names = list(names) if names else [os.path.basename(os.path.normpath(w)) for w in workdirs]
  runs = [Run(n, c, w) for n, c, w in zip(names, configs, workdirs)]
  _check(runs)
  c = runs[0].config
  experiment.parse_gin(c)
  exp = experiment.build(c)
  eval_measurement.eval_dataset(c)  # a held-out set of the wrong K or D
  for run in runs:
    run.like = experiment.init_state(exp, run.config)
  results, todo = _skip_done(runs)
  for i in todo:
    workdir_lib.prepare(runs[i].workdir, runs[i].config, RESUMABLE_CHANGES)
  multihost.sync("workdirs prepared")  # process 0 may have emptied or written them
  for i in todo:
    workdir_lib.lock(runs[i].workdir)
  try:
    results.update(_train(exp, [runs[i] for i in todo], todo, should_stop,
                          max_chunk_seconds))
  finally:
    for i in todo:
      workdir_lib.unlock(runs[i].workdir)
  diverged = [r for r in runs if r.diverged]
  if diverged:
    raise Diverged("\n".join((f"{r.name}: " if len(runs) > 1 else "") + r.diverged
                             for r in diverged))
  return [results.get(i) for i in range(len(runs))]


def _check(runs: List[Run]) -> None:
  """Every check that can fail on a user mistake, before any workdir is touched.

  Raises:
    validation.ConfigError: one sentence per problem (prefixed by the run in a group).
  """
  problems = []
  for run in runs:
    prefix = f"{run.name}: " if len(runs) > 1 else ""
    problems += [prefix + p for p in validation.find_problems(run.config, jax.device_count())]
  problems += groups.problems([r.config for r in runs], [r.name for r in runs])
  if problems:
    raise validation.ConfigError(problems)


def _skip_done(runs: List[Run]):
  """({index: final state} of the finished runs, the indices of those to train).

  A run that diverged in an earlier run is neither: rerunning would repeat the
  same steps to the same divergence, so it is marked and skipped.
  """
  results: Dict[int, Optional[experiment.TrainState]] = {}
  todo = []
  for i, run in enumerate(runs):
    if jax.process_index() == 0:
      workdir_lib.check_not_running(run.workdir)  # before force_restart may empty it
    if workdir_lib.finished_as(run.workdir, run.config):
      logging.info("%s already finished its %d steps; nothing to do.", run.workdir,
                   run.config.num_steps)
      results[i] = _final_state(run)
    elif workdir_lib.diverged_as(run.workdir, run.config):
      run.diverged = workdir_lib.divergence(run.workdir)
      logging.error("%s diverged in an earlier run (its %s file); not retrained.",
                    run.workdir, workdir_lib.DIVERGED_FILE)
    else:
      todo.append(i)
  return results, todo


def _replicated(tree, mesh):
  return jax.device_put(tree, NamedSharding(mesh, P()))


def _final_state(run: Run):
  """The final checkpoint of a finished run, read without writing (None if removed)."""
  if not os.path.isdir(os.path.join(run.workdir, workdir_lib.CHECKPOINTS_DIR)):
    return None
  with workdir_lib.checkpoint_manager(run.workdir) as manager:
    return workdir_lib.restore(manager, manager.latest_step(),
                               _replicated(run.like, make_mesh()))


def _train(exp, runs: List[Run], indices: List[int], should_stop, max_chunk_seconds):
  """Restores each run, then trains those at the same step together, lowest first."""
  mesh = make_mesh()
  handles = [RunHandle(run, workdir_lib.checkpoint_manager(run.workdir)) for run in runs]
  states = []
  for handle in handles:
    like = _replicated(handle.run.like, mesh)
    restored = workdir_lib.restore_latest(handle.manager, like)
    states.append(like if restored is None else restored)
  starts = [int(s.step) for s in states]
  if should_stop is None:
    request = StopRequest().install()
    should_stop = lambda step: request.requested
  results = {}
  for start in sorted(set(starts)):
    members = [k for k, s in enumerate(starts) if s == start]
    trainer = Trainer(exp, mesh, [handles[k] for k in members],
                      [states[k] for k in members], start, should_stop, max_chunk_seconds)
    finals, stopped = trainer.train()
    results.update({indices[k]: f for k, f in zip(members, finals)})
    if stopped:  # on request: the runs at later steps wait for the rerun
      results.update({indices[k]: states[k] for k, s in enumerate(starts) if s > start})
      break
  return results


def clu_writers():
  """clu.metric_writers, imported when the first writer opens: it imports TensorFlow
  (seconds), which a command that fails its checks or finds nothing to train never
  needs, so that such a command answers at once."""
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  return metric_writers


@dataclasses.dataclass
class RunHandle:
  """What the loop holds of one run: the run, its checkpoints and its writer.

  The writer is the run's only writer: every scalar of the run (the step's and each
  measurement's) goes through it, from the loop.  Its state of divergence is
  run.diverged.
  """
  run: Run
  manager: Any  # its orbax CheckpointManager (workdir/checkpoints)
  writer: Any = None  # a clu MetricWriter; logging only on processes > 0
  summaries: Any = None  # its SummaryWriter (process 0), for the TensorBoard layout

  def open_writer(self, group_size: int, is_lead: bool) -> None:
    """create_default_writer's pair of a logging and a summary writer, the logging one
    naming the run in a group."""
    metric_writers = clu_writers()
    if not is_lead:
      self.writer = metric_writers.create_default_writer(just_logging=True)
      return
    self.summaries = metric_writers.SummaryWriter(self.run.workdir)
    logs = metric_writers.LoggingWriter(collection=self.run.name if group_size > 1 else None)
    self.writer = metric_writers.AsyncMultiWriter([logs, self.summaries])

  def write_description(self) -> None:
    """The layout, hparams, config and operative gin config (step 0, process 0)."""
    config, workdir = self.run.config, self.run.workdir
    tensorboard_layout.write(self.summaries)
    flat = workdir_lib._flatten(json.loads(workdir_lib.config_to_json(config)))
    self.writer.write_hparams({k: (v if isinstance(v, (int, float, str, bool)) else str(v))
                               for k, v in flat.items()})
    operative = gin.operative_config_str()
    with open(os.path.join(workdir, workdir_lib.OPERATIVE_GIN_FILE), "w") as f:
      f.write(operative)
    self.writer.write_texts(0, {
        "config": "```\n" + workdir_lib.config_to_json(config) + "\n```",
        "gin/operative_config": "```\n" + operative + "\n```"})

  def diverge(self, first: int, last: int) -> None:
    """Marks the run diverged between steps first and last; nothing of it is written
    after."""
    self.manager.wait_until_finished()
    run = self.run
    run.diverged = _divergence_message(first, last, self.manager.latest_step(), run.config)
    workdir_lib.mark_diverged(run.workdir, run.diverged)
    logging.error("%s: %s", run.name, run.diverged)

  def finish(self, steps: int) -> None:
    workdir_lib.mark_finished(self.run.workdir, steps)
    if not self.run.config.keep_final_checkpoint:
      workdir_lib.remove_checkpoints(self.manager, self.run.workdir)


class _Group:
  """The stacked device state of runs at one step, and each run's view of it."""

  def __init__(self, exp, mesh, runs: List[Run], states):
    self.runs = runs
    self.shapes = groups.group_shapes([r.like for r in runs])
    fills = schedules.pad_values(exp.schedule)
    self.state = _replicated(groups.stack([groups.pad(s, self.shapes, fills)
                                           for s in states]), mesh)
    self.data = _replicated(groups.stack([experiment.run_data(r.config) for r in runs]),
                            mesh)

  def run_state(self, index: int) -> experiment.TrainState:
    """Run `index`'s current state, unpadded: what a solo run would hold."""
    return groups.cut(groups.take(self.state, index), self.runs[index].like)

  def active(self) -> List[int]:
    return [i for i, r in enumerate(self.runs) if r.diverged is None]


class Trainer:
  """The loop for runs that are all at step `start`, in named parts.

  train() runs from `start` to num_steps boundary by boundary (the measured and
  checkpointed steps): each interval runs in chunks (_run_to), then the loop writes
  the interval's training metrics, measures and checkpoints (_at_boundary).  A stop
  request or the end of training closes it (stop, _finish).  The step and every
  measurement return metrics; only this loop writes them, each run's to its writer.
  """

  def __init__(self, exp, mesh, handles: List[RunHandle], states, start: int,
               should_stop: Callable[[int], bool], max_chunk_seconds: float):
    c = exp.config
    self.exp, self.mesh, self.handles, self.start = exp, mesh, handles, start
    self.num_steps, size = c.num_steps, len(handles)
    self.group = _Group(exp, mesh, [h.run for h in handles], states)
    self.should_stop = should_stop
    self.is_lead = jax.process_index() == 0
    for handle in handles:
      handle.open_writer(size, self.is_lead)
    self.multi_step = make_multi_step(exp, mesh, size)
    from clu import periodic_actions  # pylint: disable=g-import-not-at-top
    self.progress = periodic_actions.ReportProgress(
        num_train_steps=self.num_steps,
        writer=clu_writers().MultiWriter([h.writer for h in handles]), every_secs=15.0)
    contexts = [measurements_lib.RunContext(h.run.config, h.run.workdir, start, state)
                for h, state in zip(handles, states)]
    self.measurements = measurements_lib.build_all(measurements_lib.Context(
        config=c, experiment=exp, runs=contexts, is_lead=self.is_lead,
        run_state=self.group.run_state))
    self._compiled = {}  # (measurement name, batched?) -> jitted compute
    self.sizer = ChunkSizer(max_chunk_seconds)
    # The last step is always checkpointed: a finished run's final state is kept
    # (unless keep_final_checkpoint=False), and snapshots.npz is written with it.
    self.checkpoint_steps = set(step_specs.parse(c.checkpoint_steps, self.num_steps,
                                                 include_zero=False)) | {self.num_steps}
    measured = set().union(*(s for m in self.measurements for s in m.steps))
    self.boundaries = sorted(self.checkpoint_steps | measured | {self.num_steps})

  def train(self):
    """Returns (the runs' final states (None for a diverged run), whether a stop
    request ended it)."""
    N = len(self.handles)
    logging.info("%s at step %d of %d on %d device(s)%s.", "Resuming" if self.start
                 else "Starting", self.start, self.num_steps, self.mesh.size,
                 "" if N == 1 else f", {N} runs in one program: "
                 f"{', '.join(h.run.name for h in self.handles)}")
    with clu_writers().ensure_flushes(*(h.writer for h in self.handles)):
      if self.start == 0:
        self._begin()
      self.progress(self.start)
      step = self.start
      for boundary in (b for b in self.boundaries if b > self.start):
        interval_start = step
        step, loss_sums, last, stopping = self._run_to(boundary, step)
        if stopping:
          return self.stop(step)
        if not self.group.active():
          break
        self._at_boundary(step, np.asarray(loss_sums) / np.float32(step - interval_start),
                          last)
        # Every host must agree, or one would enter the collective checkpoint alone.
        if step < self.num_steps and multihost.any_process(self.should_stop(step)):
          return self.stop(step)
      self._wait_and_close()
    return self._finals(), False

  def _begin(self) -> None:
    """Step 0: each run's description, then the measurements of the initial states
    (with the metrics of zero steps: loss NaN, placed as a step's are, so that
    measuring at step 0 and later is one compile)."""
    if self.is_lead:
      for handle in self.handles:
        handle.write_description()
    self.group.state, _, before = self.multi_step(
        self.group.state, self.group.data, jnp.asarray(0, jnp.int32),
        _replicated(jnp.zeros((len(self.handles),), jnp.float32), self.mesh))
    self.measure(0, before)

  def _run_to(self, boundary: int, step: int):
    """Runs from `step` to `boundary` in chunks of at most ~max_chunk_seconds, so that
    a stop request is answered quickly; chunking never changes the trajectory.

    Returns:
      (the step reached, loss sums [N] and last step's metrics of the interval,
      whether a stop request came between two chunks).
    """
    loss_sums = _replicated(jnp.zeros((len(self.handles),), jnp.float32), self.mesh)
    last = None
    while step < boundary:
      n = min(boundary - step, self.sizer.steps)
      started = time.perf_counter()
      self.group.state, loss_sums, last = self.multi_step(
          self.group.state, self.group.data, jnp.asarray(n, jnp.int32), loss_sums)
      finite = np.isfinite(np.asarray(loss_sums))  # waits for the chunk
      self.sizer.observe(n, time.perf_counter() - started)
      step += n
      self._check_finite(finite, step - n, step)
      if not self.group.active():
        break
      if step < boundary:
        self.progress(step)
        if multihost.any_process(self.should_stop(step)):
          # A resumed run then writes, at the next boundary, the mean loss of
          # the steps after this one only.
          return step, loss_sums, last, True
    return step, loss_sums, last, False

  def _check_finite(self, finite_losses: np.ndarray, first: int, last: int) -> None:
    """Marks diverged each active run whose loss or parameters are not finite."""
    finite = finite_losses & _finite_per_run(self.group.state.params)
    for i in self.group.active():
      if not finite[i]:
        self.handles[i].diverge(first, last)

  def _at_boundary(self, step: int, mean_losses: np.ndarray, last) -> None:
    """The interval's mean training loss, the measurements due and the checkpoint."""
    for i in self.group.active():
      self.handles[i].writer.write_scalars(
          step, {metric_names.TRAIN_LOSS: float(mean_losses[i])})
    self.progress(step)
    self.measure(step, last)
    if step in self.checkpoint_steps:
      self.checkpoint(step)

  def measure(self, step: int, train_metrics) -> None:
    """Runs the measurements due at `step` and writes each run's outputs to its
    writer (then its artefacts).  train_metrics: the last step's metrics, [N] each."""
    for m in self.measurements:
      due = [i for i in self.group.active() if step in m.steps[i]]
      if not due:
        continue
      with self.progress.timed(m.name):
        outputs = (self._compute(m, due, step, train_metrics) if m.computes
                   else {i: {} for i in due})
        for i in due:
          measurements_lib.write(self.handles[i].writer, step, m, outputs[i])
          m.save_artifacts(step, i, outputs[i])

  def _compute(self, m, due: List[int], step: int, train_metrics) -> Dict[int, Dict]:
    """{run index: its outputs as host arrays} of `m` for the runs `due`: one vmapped
    call when the whole group is due, else one call per run (e.g. a run's own dense
    snapshots)."""
    group, args = self.group, (jnp.asarray(step, jnp.int32),)
    N = len(self.handles)
    if due == list(range(N)) and N > 1:
      key = (m.name, True)
      if key not in self._compiled:
        self._compiled[key] = jax.jit(jax.vmap(m.compute, in_axes=(None, 0, 0, 0)))
      batched = self._compiled[key](*args, group.state, group.data, train_metrics)
      return dict(zip(range(N), groups.per_run(batched)))
    key = (m.name, False)
    if key not in self._compiled:  # run i's slice taken inside: one program, not one a leaf
      self._compiled[key] = jax.jit(
          lambda i, step, *trees: m.compute(step, *(groups.take(t, i) for t in trees)),
          static_argnums=0)
    return {i: jax.device_get(self._compiled[key](
        i, *args, group.state, group.data, train_metrics)) for i in due}

  def checkpoint(self, step: int) -> None:
    with self.progress.timed("checkpoint"):
      for i in self.group.active():
        workdir_lib.save(self.handles[i].manager, step, self.group.run_state(i))
        for m in self.measurements:
          m.on_checkpoint(step, i)

  def stop(self, step: int):
    """Checkpoints `step` and ends the loop on a stop request (the rerun resumes)."""
    self.checkpoint(step)
    self._wait_and_close()  # e.g. trajectory states still being written
    logging.warning("Stopped at step %d of %d; rerun the same command to resume.", step,
                    self.num_steps)
    return [self.group.run_state(i) for i in range(len(self.handles))], True

  def _wait_and_close(self) -> None:
    for handle in self.handles:
      handle.manager.wait_until_finished()
    for m in self.measurements:
      m.close()

  def _finals(self) -> List[Optional[experiment.TrainState]]:
    """Each run's final state (None if it diverged), its workdir marked finished."""
    finals = []
    for i, handle in enumerate(self.handles):
      if handle.run.diverged:
        finals.append(None)
        continue
      finals.append(self.group.run_state(i))
      handle.finish(self.num_steps)
    return finals


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
