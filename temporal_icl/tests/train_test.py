"""Training in process on a tiny config: resume, chunking, faults, what is kept."""

import logging
import os
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from temporal_icl.analysis import export
from temporal_icl.common import workdir as workdir_lib
from temporal_icl.core import experiment
from temporal_icl.core.schedules import mala
from temporal_icl.tests import binary
from temporal_icl.tests import tiny_config
from temporal_icl.training import groups
from temporal_icl.training import train
from temporal_icl.training import validation

REPO, TINY = binary.REPO, binary.TINY
run_main, science_history = binary.run_main, binary.science_history


def leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def with_llc():
  """The tiny config, with a small LLC estimate at steps 24 and 48 (which it evaluates
  at anyway, so its steps and losses are the tiny config's)."""
  config = tiny_config.get_config()
  config.llc_steps = "24,48"
  config.llc.num_draws, config.llc.num_chains, config.llc.dataset_size = 10, 2, 32
  config.llc.batch_size = 16
  return config


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory):
  """(final state, workdir) of one uninterrupted in-process run of `with_llc()`."""
  workdir = tmp_path_factory.mktemp("whole")
  return train.train_and_evaluate(with_llc(), str(workdir)), workdir


@pytest.mark.parametrize("warmup, decay", [(True, 0.0), (True, 0.25), (False, 0.5),
                                           (False, 0.0)])
def test_learning_rate_warms_up_holds_then_decays_linearly(warmup, decay):
  config = tiny_config.get_config()
  config.num_steps, config.learning_rate = 400, 2e-3
  config.lr_warmup, config.lr_decay_fraction = warmup, decay
  lr = experiment.learning_rate(config)
  steps = np.arange(401)
  w, d = (40 if warmup else 0), int(decay * 400)
  expected = np.minimum.reduce([
      np.minimum(steps / max(w, 1), 1.0) if w else np.ones(401),
      np.clip((400 - steps) / max(d, 1), 0.0, 1.0) if d else np.ones(401)]) * 2e-3
  np.testing.assert_allclose([float(lr(s)) for s in steps], expected, rtol=1e-5,
                             atol=1e-9)


@pytest.mark.parametrize("num_steps", [400, 4096, 9216, 27648, 524288])
def test_learning_rate_between_warm_up_and_decay_is_the_peak_exactly(num_steps):
  """Inside the jitted step the rate holds the float32 peak bit for bit.

  optax.warmup_constant_schedule fails this at T = 4096 (its clipped ramp gives
  0.0030000003), which is why experiment.learning_rate joins a constant piece.
  """
  config = tiny_config.get_config()
  config.num_steps, config.learning_rate = num_steps, 3e-3
  config.lr_warmup, config.lr_decay_fraction = True, 0.25
  rates = np.asarray(jax.jit(jax.vmap(experiment.learning_rate(config)))(
      np.arange(num_steps + 1)))
  held = rates[int(0.1 * num_steps):num_steps - int(round(0.25 * num_steps)) + 1]
  assert np.all(held == np.float32(3e-3))


def test_interrupted_and_resumed_run_equals_uninterrupted(whole_run, tmp_path):
  config = tiny_config.get_config()
  whole, whole_dir = whole_run
  part = tmp_path / "part"
  stopped = train.train_and_evaluate(config, str(part), should_stop=lambda s: s >= 24)
  assert int(stopped.step) == 24
  resumed = train.train_and_evaluate(config, str(part))
  assert int(resumed.step) == config.num_steps
  for a, b in zip(leaves(whole), leaves(resumed)):
    np.testing.assert_array_equal(a, b)
  assert science_history(part) == science_history(whole_dir)


def _scalars(workdir):
  """{tag: {step: value}} of every scalar but the timing tags."""
  return {tag: {step: value for step, (_, value) in series.items()}
          for tag, series in export.read_scalars(str(workdir)).items()
          if tag not in ("steps_per_sec", "uptime")}


def test_a_stop_between_measurements_resumes_to_the_same_history_but_one_train_loss(
    whole_run, tmp_path):
  """Stopped at step 20, between the evaluations of 16 and 24 (where SIGTERM stops the
  binary, between two chunks), and resumed: the same final state bit for bit, and
  every scalar at every step the same, MALA's acceptance rate and the LLC at 24 and
  48 included, except train_loss at 24.  That one is the mean over the interval's
  steps, and the resumed run sums only the steps after its checkpoint: 21-24, not
  17-24 (train.py and docs/running.md "Interruption and resume" say so)."""
  whole, whole_dir = whole_run
  part = tmp_path / "part"
  # Chunks of one step after the first two device calls, so the stop falls inside.
  stopped = train.train_and_evaluate(with_llc(), str(part), should_stop=lambda s: s >= 20,
                                     max_chunk_seconds=1e-9)
  assert int(stopped.step) == 20
  resumed = train.train_and_evaluate(with_llc(), str(part))
  for a, b in zip(leaves(whole), leaves(resumed)):
    np.testing.assert_array_equal(a, b)
  got, want = _scalars(part), _scalars(whole_dir)
  assert sorted(got) == sorted(want)
  assert {"train_loss", "mala/acceptance_rate", "llc/mean", "llc/std",
          "llc/loss_below_init_fraction"} <= set(got)
  assert sorted(got["llc/mean"]) == [24, 48]
  for tag in got:
    assert sorted(got[tag]) == sorted(want[tag]), tag
    for step in want[tag]:
      if (tag, step) != ("train_loss", 24):
        assert got[tag][step] == want[tag][step], (tag, step)
  # train_loss at 24: the whole run's is the mean of steps 17-24, the resumed run's
  # the mean of 21-24.  Both recomputed from the whole run's checkpoint 16 with the
  # loop's own step, 4 steps at a time.
  exp = experiment.build(with_llc())
  multi_step = train.make_multi_step(exp, train.make_mesh(), 1)
  with workdir_lib.checkpoint_manager(str(whole_dir)) as manager:
    assert sorted(manager.all_steps()) == [16, 32, 48]
    state = workdir_lib.restore(manager, 16, experiment.init_state(exp))
  state, run = groups.stack([state]), groups.stack([experiment.run_data(with_llc())])
  state, first, _ = multi_step(state, run, jnp.asarray(4, jnp.int32), jnp.zeros((1,)))
  _, second, _ = multi_step(state, run, jnp.asarray(4, jnp.int32), jnp.zeros((1,)))
  first, second = float(first[0]), float(second[0])
  np.testing.assert_allclose(want["train_loss"][24], (first + second) / 8, rtol=1e-6)
  np.testing.assert_allclose(got["train_loss"][24], second / 4, rtol=1e-6)
  assert abs(got["train_loss"][24] - want["train_loss"][24]) > 1e-3


def test_m_infinite_trains_checkpoints_and_resumes(tmp_path):
  # M = ∞ is the empty task set [0, D], which orbax cannot save as such.
  config = tiny_config.get_config()
  config.M, config.schedule, config.gamma = -1, "stationary", 0.0
  config.num_steps = 32
  whole = train.train_and_evaluate(config, str(tmp_path / "whole"))
  assert whole.schedule.tasks.shape == (0, config.D)
  part = tmp_path / "part"
  train.train_and_evaluate(config, str(part), should_stop=lambda s: s >= 16)
  resumed = train.train_and_evaluate(config, str(part))
  assert resumed.schedule.tasks.shape == (0, config.D)
  for a, b in zip(leaves(whole), leaves(resumed)):
    np.testing.assert_array_equal(a, b)


def test_killed_run_rewrites_steps_once(whole_run, tmp_path):
  # A hard kill after step 24 leaves summaries past the last checkpoint (16):
  # simulate it by deleting the checkpoint at 24, then resume.
  config = tiny_config.get_config()
  _, whole = whole_run
  part = tmp_path / "part"
  train.train_and_evaluate(config, str(part), should_stop=lambda s: s >= 24)
  import shutil
  shutil.rmtree(part / "checkpoints" / "24")
  train.train_and_evaluate(config, str(part))
  assert science_history(part) == science_history(whole)


def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(whole_run, tmp_path,
                                                                   caplog):
  config = tiny_config.get_config()
  whole, whole_dir = whole_run
  train.train_and_evaluate(config, str(tmp_path), should_stop=lambda s: s >= 24)
  damaged = 0
  for root, _, files in os.walk(tmp_path / "checkpoints" / "24"):
    for name in files:
      path = os.path.join(root, name)
      with open(path, "r+b") as f:  # keep the first half of every file
        f.truncate(os.path.getsize(path) // 2)
      damaged += 1
  assert damaged
  resumed = train.train_and_evaluate(config, str(tmp_path))  # from step 16
  assert "Checkpoint 24" in caplog.text and "cannot be read" in caplog.text
  for a, b in zip(leaves(whole), leaves(resumed)):
    np.testing.assert_array_equal(a, b)
  assert science_history(tmp_path) == science_history(whole_dir)


def test_chunking_is_invisible(whole_run, tmp_path):
  whole, whole_dir = whole_run
  config = tiny_config.get_config()
  # A cap this small makes every device call after the first run a single step.
  chunked = train.train_and_evaluate(config, str(tmp_path), max_chunk_seconds=1e-9)
  for a, b in zip(leaves(whole), leaves(chunked)):
    np.testing.assert_array_equal(a, b)
  assert science_history(tmp_path) == science_history(whole_dir)
  losses = [export.scalar_array(export.read_scalars(str(d))["train_loss"])
            for d in (whole_dir, tmp_path)]
  for a, b in zip(*losses):
    np.testing.assert_array_equal(a, b)  # summed on device across chunks: bit-equal


def test_chunk_size_follows_the_measured_speed():
  sizer = train.ChunkSizer(max_seconds=2.0)
  assert sizer.steps == train.ChunkSizer.FIRST
  sizer.observe(16, 30.0)  # the first call compiles: not timed
  assert sizer.steps == train.ChunkSizer.FIRST
  sizer.observe(16, 0.5)  # 32 steps/s -> 64 steps in 2 s
  assert sizer.steps == 64
  sizer.observe(64, 16.0)  # 4 steps/s -> 8 steps
  assert sizer.steps == 8


def test_measurements_do_not_change_the_trajectory(whole_run, tmp_path):
  # The plain run evaluates every 8 steps; this one evaluates and checkpoints only at
  # the end but estimates the LLC (which draws its own randomness) at three steps
  # and keeps a log-spaced trajectory of states.
  plain, _ = whole_run
  config = tiny_config.get_config()
  config.eval_steps = "48"
  config.checkpoint_steps = "48"
  config.llc_steps = "0,20,48"
  config.llc.num_draws, config.llc.num_chains, config.llc.dataset_size = 10, 2, 32
  config.llc.batch_size = 16
  config.trajectory_steps = "log:5"
  measured = train.train_and_evaluate(config, str(tmp_path / "measured"))
  assert len(os.listdir(tmp_path / "measured" / "trajectory")) >= 5
  llc_steps, _ = export.scalar_array(
      export.read_scalars(str(tmp_path / "measured"))["llc/mean"])
  assert list(llc_steps) == [0, 20, 48]
  for a, b in zip(leaves(plain), leaves(measured)):
    np.testing.assert_array_equal(a, b)


def test_one_and_two_devices_agree(whole_run, two_device_run):
  one, two = science_history(whole_run[1]), science_history(two_device_run)
  assert [r["step"] for r in one] == [r["step"] for r in two]
  for a, b in zip(one, two):
    for key in a:
      np.testing.assert_allclose(a[key], b[key], rtol=2e-4, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("overrides, expected", [
    (dict(gin_bindings=("activation.nme='gelu'",)),
     "gin: Configurable 'activation' doesn't have a parameter named 'nme'."),
    (dict(gin_bindings=("activaton.name='gelu'",)), "gin: No configurable matching "
     "'activaton'."),
    (dict(gin_files=("configs/model/nope.gin",)),
     "gin file 'configs/model/nope.gin' does not exist"),
])
def test_gin_mistakes_are_one_sentence_and_write_nothing(tmp_path, overrides, expected):
  config = tiny_config.get_config()
  config.update(overrides)
  workdir = tmp_path / "run"
  with pytest.raises(validation.ConfigError) as raised:
    train.train_and_evaluate(config, str(workdir))
  assert len(raised.value.problems) == 1 and expected in raised.value.problems[0]
  assert not os.path.exists(workdir)  # so the corrected command is not "a different config"


def test_a_second_run_on_a_live_workdir_is_refused_and_a_stale_lock_cleared(tmp_path):
  import socket  # pylint: disable=g-import-not-at-top
  from temporal_icl.common import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  config = tiny_config.get_config()
  lock = tmp_path / workdir_lib.LOCK_FILE
  tmp_path.mkdir(exist_ok=True)
  other = subprocess.Popen(["sleep", "60"])  # a live process holding the lock
  try:
    lock.write_text(f"{socket.gethostname()} {other.pid}\n")
    with pytest.raises(workdir_lib.ResumeError, match=f"in use by another run \\(pid {other.pid}"):
      train.train_and_evaluate(config, str(tmp_path))
    assert not os.path.exists(tmp_path / "checkpoints")
  finally:
    other.kill()
    other.wait()
  # Its process is gone: the lock is stale, so the run goes ahead and unlocks at the end.
  train.train_and_evaluate(config, str(tmp_path))
  assert os.path.exists(tmp_path / "FINISHED") and not lock.exists()


def test_the_latest_checkpoints_are_kept_and_every_trajectory_state(tmp_path):
  from temporal_icl.common import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  config = tiny_config.get_config()
  config.checkpoint_steps, config.trajectory_steps = "every:8", "every:8"
  train.train_and_evaluate(config, str(tmp_path))
  kept = sorted(int(d) for d in os.listdir(tmp_path / "checkpoints") if d.isdigit())
  assert kept == [48 - 8 * i for i in range(workdir_lib.CHECKPOINTS_KEPT)][::-1]
  states = sorted(int(d) for d in os.listdir(tmp_path / "trajectory") if d.isdigit())
  assert states == list(range(0, 49, 8))


def test_keep_final_checkpoint_false_removes_checkpoints(tmp_path):
  config = tiny_config.get_config()
  config.keep_final_checkpoint = False
  train.train_and_evaluate(config, str(tmp_path))
  assert not os.path.exists(tmp_path / "checkpoints")
  assert os.path.exists(tmp_path / "FINISHED")


def test_tfds_eval_set_is_shared_by_every_seed(tmp_path):
  ridge = []
  for seed in (0, 1):
    c = tiny_config.get_config()
    c.D, c.K, c.delta_prompt_length, c.num_steps = 4, 16, 16, 8
    c.seed, c.eval_dataset, c.eval_data_dir = seed, "iclr_eval/d4_k16", str(tmp_path / "tfds")
    train.train_and_evaluate(c, str(tmp_path / f"seed{seed}"))
    ridge.append(export.read_scalars(str(tmp_path / f"seed{seed}"))["test_error_ridge"])
  assert ridge[0][8][1] == ridge[1][8][1]  # same held-out sequences, same ridge error
  c.K, c.delta_prompt_length = 8, 8  # the set holds K = 16 sequences
  with pytest.raises(validation.ConfigError, match="K=16"):
    train.train_and_evaluate(c, str(tmp_path / "mismatch"))


def _tree(root):
  """{relative path: bytes} of every file below `root` (directories as None)."""
  found = {}
  for directory, dirs, files in os.walk(root):
    for name in dirs:
      found[os.path.relpath(os.path.join(directory, name), root)] = None
    for name in files:
      path = os.path.join(directory, name)
      with open(path, "rb") as f:
        found[os.path.relpath(path, root)] = f.read()
  return found


@pytest.mark.parametrize("overrides", [
    {},
    {"keep_final_checkpoint": False},
    {"checkpoint_steps": "16"},  # a list: step 16 only (the last step is saved anyway)
    {"checkpoint_steps": "", "eval_steps": "", "head": "gaussian",
     "snapshot_steps": "every:16", "pr_generation_steps": 4, "num_pr_samples": 16},
], ids=["default", "no_final_checkpoint", "checkpoint_16_only", "no_checkpoint_steps"])
def test_rerunning_a_finished_run_trains_nothing_and_writes_nothing(tmp_path, overrides,
                                                                    caplog):
  caplog.set_level(logging.INFO)
  config = tiny_config.get_config()
  config.update(overrides)
  first = train.train_and_evaluate(config, str(tmp_path))
  assert int(first.step) == config.num_steps
  assert os.path.exists(tmp_path / "FINISHED")
  before = _tree(tmp_path)
  if config.snapshot_steps:  # the snapshots are written with the final checkpoint
    with np.load(tmp_path / "snapshots.npz") as f:
      assert list(f["steps"]) == [0, 16, 32, 48]
  again = train.train_and_evaluate(_with(overrides), str(tmp_path))  # the same command
  assert _tree(tmp_path) == before
  assert "already finished" in caplog.text and "Resuming" not in caplog.text
  if config.keep_final_checkpoint:
    for a, b in zip(leaves(first), leaves(again)):
      np.testing.assert_array_equal(a, b)
  else:
    assert again is None


def _with(overrides):
  config = tiny_config.get_config()
  config.update(overrides)
  return config


def test_a_finished_run_without_its_final_checkpoint_is_not_extended(tmp_path):
  config = _with({"keep_final_checkpoint": False})
  train.train_and_evaluate(config, str(tmp_path))
  before = _tree(tmp_path)
  config = _with({"keep_final_checkpoint": False, "num_steps": 64})
  with pytest.raises(workdir_lib.ResumeError, match="cannot be extended to 64"):
    train.train_and_evaluate(config, str(tmp_path))
  assert _tree(tmp_path) == before


def test_the_step_returns_its_metrics_and_zero_steps_those_of_the_state():
  """(state, metrics) as in flax's train_step: the loss, the rate at the step reached
  and MALA's acceptance rate come out of the step (the evaluation passes them on)."""
  config = tiny_config.get_config()
  exp = experiment.build(config)
  multi_step = train.make_multi_step(exp, train.make_mesh(), 1)
  state = groups.stack([experiment.init_state(exp)])
  run = groups.stack([experiment.run_data(config)])
  state, _, before = multi_step(state, run, jnp.asarray(0, jnp.int32), jnp.zeros((1,)))
  assert np.isnan(before["train_loss"][0]) and float(before["mala/acceptance_rate"][0]) == 0
  state, sums, after = multi_step(state, run, jnp.asarray(3, jnp.int32), jnp.zeros((1,)))
  one = groups.take(state, 0)
  assert int(one.step) == 3 and np.isfinite(after["train_loss"][0])
  assert float(after["lr"][0]) == float(exp.learning_rate()(3))
  assert float(after["mala/acceptance_rate"][0]) == float(
      mala.acceptance_rate(one.schedule, config.M))
  assert float(after["mala/acceptance_rate"][0]) > 0


def _adam_float64(grads, lr, steps, b1=0.9, b2=0.999, eps=1e-8):
  """The updates of bias-corrected Adam (no weight decay) for a list of gradients
  [steps, ...], in float64: the paper's optimizer, written out."""
  m = v = 0.0
  updates = []
  for t, g in enumerate(np.asarray(grads, np.float64)[:steps], start=1):
    m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
    updates.append(-lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps))
  return updates


def _stepped(config, num_steps):
  """(experiment, RunData, initial state, state after `num_steps` training steps) of
  the run `config`, trained by the loop's own step program on one device."""
  exp = experiment.build(config)
  run = experiment.run_data(config)
  initial = experiment.init_state(exp, config)
  multi_step = train.make_multi_step(exp, train.make_mesh(), 1)
  stepped, _, _ = multi_step(groups.stack([initial]), groups.stack([run]),
                             jnp.asarray(num_steps, jnp.int32), jnp.zeros((1,)))
  return exp, run, initial, groups.take(stepped, 0)


def test_the_optimizer_is_adam_with_the_papers_constants():
  """experiment's optimizer against Adam written out: four updates of gradients of
  mixed sizes (those near 1e-8 show ε, the later updates β1 and β2)."""
  config = tiny_config.get_config()
  config.lr_warmup = False
  optimizer = experiment.build(config).optimizer()
  scales = np.array([1.0, 1e-2, 1e-6, 1e-8, 3e-9])
  grads = np.random.default_rng(0).normal(size=(4, 5)) * scales
  params = jnp.zeros(5, jnp.float32)
  state = optimizer.init(params)
  for t, want in enumerate(_adam_float64(grads, config.learning_rate, 4)):
    got, state = optimizer.update(jnp.asarray(grads[t], jnp.float32), state, params)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=0, err_msg=t)


def test_one_training_step_is_adam_on_the_gradient_of_its_batch_loss():
  """The training step's update is Adam's first (p − lr·g/(|g| + ε)) on the gradient
  of the loss of its batch, at the rate of step 0.  The rate is large (0.05, no
  warm-up), so a weight decay of 1e-4 (AdamW's default) would move the parameters
  by up to 5e-6, beyond this float32 step's rounding (4e-7, measured)."""
  config = tiny_config.get_config()
  config.learning_rate, config.lr_warmup = 0.05, False
  exp, run, initial, stepped = _stepped(config, 1)
  schedule = exp.schedule.update(initial.schedule, 0,
                                 jax.random.fold_in(run.keys["schedule_steps"], 0))
  xs, ys = experiment.training_batch(exp, run, schedule, 0)
  grads = jax.grad(exp.loss)(initial.params, xs, ys)
  for got, p, g in zip(jax.tree.leaves(stepped.params),
                       jax.tree.leaves(initial.params), jax.tree.leaves(grads)):
    want = np.asarray(p, np.float64) + _adam_float64(np.asarray(g)[None], 0.05, 1)[0]
    np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-6)


def test_the_steps_move_the_tasks_with_a_fresh_schedule_key_each_step():
  """After 6 steps, the run's task set is the schedule's own chain driven by the
  keys fold_in(schedule_steps, step): a new draw each step, the same on resume."""
  config = tiny_config.get_config()
  config.gamma, config.M = 2.0, 8  # MALA rejects some moves: its acceptance draws count
  _, run, initial, stepped = _stepped(config, 6)
  chain = initial.schedule
  for step in range(6):
    chain = mala.update(chain, step, jax.random.fold_in(run.keys["schedule_steps"], step))
  moved = stepped.schedule
  np.testing.assert_allclose(moved.tasks, chain.tasks, rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(moved.accepted, chain.accepted)
  assert 0 < int(chain.accepted.sum()) < 6 * config.M  # some moves taken, some not
