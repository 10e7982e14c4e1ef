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
lengths.  Measurements (temporal_icl.measurements) compute pure functions of a
run's state, vmapped over the group; the loop writes each run's slice to that
run's own writer and files.  Each run keeps its own workdir, with exactly the
files a solo run writes, and its own unpadded checkpoints, so a run trained in a
group resumes alone and the other way round.  Faults are per run: a run whose
loss or parameters stop being finite is marked DIVERGED and frozen (nothing of
it is written any more) while the rest of its group trains on.  Every random
stream has its own key (temporal_icl.core.streams), so turning a measurement on or
off never changes a training trajectory.
"""

import dataclasses
import json
import os
import signal
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence

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

from temporal_icl.common import step_specs
from temporal_icl.common import workdir as workdir_lib
from temporal_icl.core import experiment
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
  """Returns f(states, runs, num_steps, loss_sums) -> (states, loss_sums, last losses).

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
    return experiment.TrainState(state.step + 1, params, opt_state, sched), loss

  group_step = over_runs(one_step, size)

  def per_device(states, runs, num_steps, loss_sums):
    def body(_, carry):
      states, totals, _ = carry
      states, losses = group_step(states, runs)
      return states, totals + losses, losses
    return lax.fori_loop(0, num_steps, body, (states, loss_sums, jnp.zeros_like(loss_sums)))

  # On one device nothing is averaged, so the values' device-varying type (which
  # only pmean makes replicated again) is not checked.
  mapped = jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(), P(), P()),
                         out_specs=(P(), P(), P()), check_vma=mesh.size > 1)
  return jax.jit(mapped, donate_argnums=0)


class Diverged(RuntimeError):
  """The training loss or the parameters of a run stopped being finite."""


def _finite_per_run(params) -> np.ndarray:
  """bool [N]: every parameter of run i is finite."""
  per_leaf = [jnp.all(jnp.isfinite(x), axis=tuple(range(1, x.ndim)))
              for x in jax.tree.leaves(params)]
  return np.asarray(jnp.stack(per_leaf).all(0))


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
  problems = []
  for run in runs:
    prefix = f"{run.name}: " if len(runs) > 1 else ""
    problems += [prefix + p for p in validation.find_problems(run.config, jax.device_count())]
  problems += groups.problems([r.config for r in runs], names)
  if problems:  # every check that can fail on a user mistake, before any workdir is touched
    raise validation.ConfigError(problems)
  c = runs[0].config
  experiment.parse_gin(c)
  exp = experiment.build(c)
  eval_measurement.eval_dataset(c)  # a held-out set of the wrong K or D
  for run in runs:
    run.like = experiment.init_state(exp, run.config)

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
      # Rerunning would repeat the same steps to the same divergence.
      run.diverged = workdir_lib.divergence(run.workdir)
      logging.error("%s diverged in an earlier run (its %s file); not retrained.",
                    run.workdir, workdir_lib.DIVERGED_FILE)
    else:
      todo.append(i)
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
  managers = [workdir_lib.checkpoint_manager(run.workdir) for run in runs]
  states = []
  for run, manager in zip(runs, managers):
    like = _replicated(run.like, mesh)
    restored = workdir_lib.restore_latest(manager, like)
    states.append(like if restored is None else restored)
  starts = [int(s.step) for s in states]
  results = {}
  for start in sorted(set(starts)):
    members = [k for k, s in enumerate(starts) if s == start]
    finals, stopped = _train_from(
        exp, mesh, [runs[k] for k in members], [states[k] for k in members],
        [managers[k] for k in members], start, should_stop, max_chunk_seconds)
    results.update({indices[k]: f for k, f in zip(members, finals)})
    if stopped:  # on request: the runs at later steps wait for the rerun
      results.update({indices[k]: states[k] for k, s in enumerate(starts) if s > start})
      break
  return results


def _writer(run: Run, group_size: int, is_lead: bool):
  """(the run's writer, its summary writer or None): create_default_writer's pair of
  a logging and a summary writer, the logging one naming the run in a group."""
  if not is_lead:
    return metric_writers.create_default_writer(just_logging=True), None
  summaries = metric_writers.SummaryWriter(run.workdir)
  logs = metric_writers.LoggingWriter(collection=run.name if group_size > 1 else None)
  return metric_writers.AsyncMultiWriter([logs, summaries]), summaries


def _write_run_description(writer, summaries, workdir: str, config) -> None:
  tensorboard_layout.write(summaries)
  flat = workdir_lib._flatten(json.loads(workdir_lib.config_to_json(config)))
  writer.write_hparams({k: (v if isinstance(v, (int, float, str, bool)) else str(v))
                        for k, v in flat.items()})
  operative = gin.operative_config_str()
  with open(os.path.join(workdir, workdir_lib.OPERATIVE_GIN_FILE), "w") as f:
    f.write(operative)
  writer.write_texts(0, {"config": "```\n" + workdir_lib.config_to_json(config) + "\n```",
                         "gin/operative_config": "```\n" + operative + "\n```"})


class _Group:
  """The stacked device state of runs at one step, and each run's view of it."""

  def __init__(self, exp, mesh, runs: List[Run], states):
    self.runs = runs
    self.shapes = groups.group_shapes([r.like for r in runs])
    fills = getattr(exp.schedule, "PAD_VALUES", {})
    self.state = _replicated(groups.stack([groups.pad(s, self.shapes, fills)
                                           for s in states]), mesh)
    self.data = _replicated(groups.stack([experiment.run_data(r.config) for r in runs]),
                            mesh)

  def run_state(self, index: int) -> experiment.TrainState:
    """Run `index`'s current state, unpadded: what a solo run would hold."""
    return groups.cut(groups.take(self.state, index), self.runs[index].like)

  def active(self) -> List[int]:
    return [i for i, r in enumerate(self.runs) if r.diverged is None]


def _train_from(exp, mesh, runs: List[Run], states, managers, start: int, should_stop,
                max_chunk_seconds):
  """The loop for runs that are all at step `start`.

  Returns:
    (the runs' final states (None for a diverged run), whether a stop request ended it).
  """
  c = exp.config
  T, N = c.num_steps, len(runs)
  group = _Group(exp, mesh, runs, states)
  logging.info("%s at step %d of %d on %d device(s)%s.", "Resuming" if start else
               "Starting", start, T, mesh.size,
               "" if N == 1 else f", {N} runs in one program: {', '.join(r.name for r in runs)}")

  if should_stop is None:
    request = StopRequest().install()
    should_stop = lambda step: request.requested
  is_lead = jax.process_index() == 0
  writers, summary_writers = zip(*(_writer(run, N, is_lead) for run in runs))
  multi_step = make_multi_step(exp, mesh, N)
  progress = periodic_actions.ReportProgress(
      num_train_steps=T, writer=metric_writers.MultiWriter(writers), every_secs=15.0)
  contexts = [measurements_lib.RunContext(run.config, run.workdir, writer, start, state)
              for run, writer, state in zip(runs, writers, states)]
  measurements = measurements_lib.build_all(measurements_lib.Context(
      config=c, experiment=exp, runs=contexts, is_lead=is_lead, run_state=group.run_state))
  compiled = {}  # (measurement name, batched?) -> jitted compute

  def measure(step: int, last_losses):
    for m in measurements:
      due = [i for i in group.active() if step in m.steps[i]]
      if not due:
        continue
      with progress.timed(m.name):
        outputs = {i: {} for i in due}
        if hasattr(m, "compute"):
          args = (jnp.asarray(step, jnp.int32),)
          if due == list(range(N)) and N > 1:
            key = (m.name, True)
            if key not in compiled:
              compiled[key] = jax.jit(jax.vmap(m.compute, in_axes=(None, 0, 0, 0)))
            batched = compiled[key](*args, group.state, group.data, last_losses)
            outputs = dict(zip(range(N), groups.per_run(batched)))
          else:  # only some runs are due (a run's own dense snapshots): one at a time
            key = (m.name, False)
            if key not in compiled:
              compiled[key] = jax.jit(m.compute)
            for i in due:
              outputs[i] = jax.device_get(compiled[key](
                  *args, groups.take(group.state, i), groups.take(group.data, i),
                  last_losses[i]))
        for i in due:
          m.write(step, i, outputs[i])

  # The last step is always checkpointed: a finished run's final state is kept (unless
  # keep_final_checkpoint=False), and snapshots.npz is written with it.
  checkpoint_steps = set(step_specs.parse(c.checkpoint_steps, T, include_zero=False)) | {T}

  def checkpoint(step: int):
    with progress.timed("checkpoint"):
      for i in group.active():
        workdir_lib.save(managers[i], step, group.run_state(i))
        for m in measurements:
          if hasattr(m, "on_checkpoint"):
            m.on_checkpoint(step, i)

  def stop(step: int):
    checkpoint(step)
    for manager in managers:
      manager.wait_until_finished()
    _close(measurements)  # e.g. trajectory states still being written
    logging.warning("Stopped at step %d of %d; rerun the same command to resume.", step, T)
    return [group.run_state(i) for i in range(N)], True

  measured_steps = set().union(*(s for m in measurements for s in m.steps))
  boundaries = sorted(checkpoint_steps | measured_steps | {T})
  # Placed as the step's losses are, so that measuring at step 0 and later is one
  # compile.  Made on the devices: a host NaN fails multi-host device_put's check that
  # every process passes the same value (NaN != NaN).
  nan = jax.jit(lambda: jnp.full((N,), jnp.nan, jnp.float32),
                out_shardings=NamedSharding(mesh, P()))()
  with metric_writers.ensure_flushes(*writers):
    if start == 0:
      if is_lead:
        for run, writer, summaries in zip(runs, writers, summary_writers):
          _write_run_description(writer, summaries, run.workdir, run.config)
      measure(0, nan)
    progress(start)
    step = start
    sizer = ChunkSizer(max_chunk_seconds)
    for boundary in (b for b in boundaries if b > start):
      # Run to the next boundary in chunks of at most ~max_chunk_seconds, so that a
      # stop request is answered quickly; chunking never changes the trajectory.
      interval_start = step
      loss_sums = _replicated(jnp.zeros((N,), jnp.float32), mesh)
      while step < boundary:
        n = min(boundary - step, sizer.steps)
        started = time.perf_counter()
        group.state, loss_sums, last = multi_step(group.state, group.data,
                                                  jnp.asarray(n, jnp.int32), loss_sums)
        finite = np.isfinite(np.asarray(loss_sums))  # waits for the chunk
        sizer.observe(n, time.perf_counter() - started)
        step += n
        finite &= _finite_per_run(group.state.params)
        for i in group.active():
          if not finite[i]:
            _diverge(runs[i], managers[i], step - n, step)
        if not group.active():
          break
        if step < boundary:
          progress(step)
          if multihost.any_process(should_stop(step)):
            # A resumed run then writes, at the next boundary, the mean loss of
            # the steps after this one only.
            return stop(step)
      if not group.active():
        break
      means = np.asarray(loss_sums) / np.float32(step - interval_start)
      for i in group.active():
        writers[i].write_scalars(step, {"train_loss": float(means[i])})
      progress(step)
      measure(step, last)
      if step in checkpoint_steps:
        checkpoint(step)
      # Every host must agree, or one would enter the collective checkpoint alone.
      if step < T and multihost.any_process(should_stop(step)):
        return stop(step)
    for manager in managers:
      manager.wait_until_finished()
    _close(measurements)
  finals = []
  for i, run in enumerate(runs):
    if run.diverged:
      finals.append(None)
      continue
    finals.append(group.run_state(i))
    workdir_lib.mark_finished(run.workdir, T)
    if not run.config.keep_final_checkpoint:
      workdir_lib.remove_checkpoints(managers[i], run.workdir)
  return finals, False


def _diverge(run: Run, manager, first: int, last: int) -> None:
  """Marks `run` diverged between steps first and last; nothing of it is written after."""
  manager.wait_until_finished()
  run.diverged = _divergence_message(first, last, manager.latest_step(), run.config)
  workdir_lib.mark_diverged(run.workdir, run.diverged)
  logging.error("%s: %s", run.name, run.diverged)


def _close(measurements):
  for m in measurements:
    if hasattr(m, "close"):
      m.close()


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
