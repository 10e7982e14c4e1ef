"""The non-stationarity schedules: MALA correctness and resampling bookkeeping."""

import jax
from jax import lax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import stats

from temporal_icl.core import schedules
from temporal_icl.core.schedules import dirichlet
from temporal_icl.core.schedules import mala


def _config(**kw):
  c = ml_collections.ConfigDict(dict(M=3, D=2, gamma=0.0, R=0, num_steps=50))
  c.update(kw)
  return c


def run(module, config, steps=None, seed=0):
  """Tasks [T, M, D] after each update, running update for steps 0..T-1 under jit."""
  state = module.init(jax.random.PRNGKey(seed), config)
  keys = jax.random.split(jax.random.PRNGKey(seed + 1), steps or config.num_steps)

  @jax.jit
  def scan(state):
    def body(state, inputs):
      step, key = inputs
      state = module.update(state, step, key)
      return state, module.current_tasks(state)
    return lax.scan(body, state, (jnp.arange(len(keys)), keys))

  final, tasks = scan(state)
  return state, final, np.asarray(tasks)


def test_mala_ratio_equals_general_metropolis_hastings_ratio():
  rng = np.random.default_rng(0)
  for gamma in (1e-3, 0.1, 0.7, 1.9):
    t, t_new = rng.normal(size=(2, 5, 4))
    a = 1 - gamma / 2
    q = lambda to, frm: stats.multivariate_normal(a * frm, gamma * np.eye(4)).logpdf(to)
    target = stats.multivariate_normal(np.zeros(4), np.eye(4)).logpdf
    expected = [target(n) + q(o, n) - target(o) - q(n, o) for o, n in zip(t, t_new)]
    got = mala.log_acceptance_ratio(jnp.asarray(t), jnp.asarray(t_new), gamma)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def _pooled_variance_after_chain(update_fn, M=2000, D=3, gamma=0.5, steps=200):
  state = mala.init(jax.random.PRNGKey(0), _config(M=M, D=D, gamma=gamma))
  state = jax.jit(lambda s: lax.fori_loop(
      0, steps, lambda i, s: update_fn(s, i, jax.random.fold_in(jax.random.PRNGKey(9), i)),
      s))(state)
  return state, np.asarray(state.tasks)


def test_mala_leaves_standard_normal_invariant():
  state, tasks = _pooled_variance_after_chain(mala.update)
  n = tasks.shape[0]
  # n = 2000 draws per dimension: SE of a mean is 1/√n ≈ 0.022, of a variance
  # √(2/n) ≈ 0.032, of a covariance ≈ 1/√n; 4 SE bounds.
  np.testing.assert_allclose(tasks.mean(0), 0.0, atol=4 / np.sqrt(n))
  np.testing.assert_allclose(np.cov(tasks.T), np.eye(3), atol=4 * np.sqrt(2 / n))
  assert 0.5 < float(mala.acceptance_rate(state)) < 1.0  # the chain moved


def test_the_invariance_check_catches_an_unadjusted_sampler():
  # Always accepting the Langevin proposal (ULA) targets variance 1/(1 − γ/4) ≠ 1.
  def always_accept(state, step, key):
    t, g = state.tasks, state.gamma
    new = (1 - g / 2) * t + jnp.sqrt(g) * jax.random.normal(key, t.shape)
    return state._replace(tasks=new)
  _, tasks = _pooled_variance_after_chain(always_accept, gamma=1.5)
  n = tasks.shape[0]
  assert np.abs(np.diag(np.cov(tasks.T)) - 1).max() > 4 * np.sqrt(2 / n)


def test_gamma_zero_leaves_tasks_unchanged():
  state, final, tasks = run(mala, _config(gamma=0.0))
  np.testing.assert_array_equal(tasks, np.broadcast_to(state.tasks, tasks.shape))


def _segments_of(tasks):
  """Per task, the steps at which it changes."""
  changes = np.any(tasks[1:] != tasks[:-1], axis=-1)  # [T-1, M]
  return [np.flatnonzero(changes[:, m]) + 1 for m in range(tasks.shape[1])]


@pytest.mark.parametrize("R, T, seed", [(4, 50, 0), (4, 50, 3), (7, 20, 1), (1, 30, 0)])
def test_dirichlet_segments(R, T, seed):
  state, final, tasks = run(dirichlet, _config(R=R, num_steps=T), seed=seed)
  starts = np.asarray(state.starts)
  assert starts.shape == (3, R) and starts.dtype == np.int32
  lengths = np.diff(np.concatenate([starts, np.full((3, 1), T)], 1), axis=1)
  assert np.all(lengths >= 0) and np.all(lengths.sum(1) == T)
  assert np.all(starts[:, 0] == 0) and np.all(np.diff(starts, axis=1) >= 0)
  for m, changes in enumerate(_segments_of(tasks)):
    nonempty_starts = np.unique(starts[m][(lengths[m] > 0)])[1:]
    # Tasks change exactly at each non-empty segment's start and nowhere else.
    np.testing.assert_array_equal(changes, nonempty_starts)
  events = sorted(set(np.concatenate(_segments_of(tasks))))
  np.testing.assert_array_equal(dirichlet.resample_steps(final), events)


def test_dirichlet_lengths_follow_the_proportions():
  p = jnp.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8], [0.34, 0.33, 0.33]])
  lengths = dirichlet.largest_remainder_lengths(p, 10)
  np.testing.assert_array_equal(lengths, [[5, 3, 2], [1, 1, 8], [4, 3, 3]])


def test_dirichlet_never_makes_an_empty_segment_current():
  # T = 3 with R = 6 forces empty segments (several segments starting at one step).
  config = _config(M=50, R=6, num_steps=3)
  state = dirichlet.init(jax.random.PRNGKey(0), config)
  starts = np.asarray(state.starts)
  ends = np.concatenate([starts[:, 1:], np.full((50, 1), 3)], 1)  # [M, R]
  assert np.any(ends == starts)  # some segments are empty
  for step in range(3):
    state = dirichlet.update(state, step)
    current = np.asarray(state.segment)  # [M]
    rows = np.arange(50)
    # The current segment holds the step, so it is not empty ...
    assert np.all(starts[rows, current] <= step) and np.all(step < ends[rows, current])
    # ... and the tasks are that segment's draws.
    expected = [dirichlet.segments.segment_task(state.task_key, m, current[m], 2)
                for m in range(50)]
    np.testing.assert_array_equal(state.tasks, np.stack(expected))


def test_dirichlet_segment_proportions_follow_dirichlet_of_ones():
  # Dirichlet(1,...,1) with R = 4: the event times are R - 1 uniform points, and
  # each segment's fraction of the run is Beta(1, 3) (mean 1/4).
  config = _config(M=4000, R=4, num_steps=1000)
  starts = np.asarray(dirichlet.init(jax.random.PRNGKey(0), config).starts)
  lengths = np.diff(np.concatenate([starts, np.full((4000, 1), 1000)], 1), axis=1)
  # Each fraction ~ Beta(1, 3): SD ≈ 0.19, SE of the mean over 4000 ≈ 0.003.
  np.testing.assert_allclose(lengths.mean(0) / 1000, 0.25, atol=0.015)
  # Its whole distribution, not only its mean (a Dirichlet of another concentration
  # has the same mean): Kolmogorov-Smirnov against Beta(1, 3), for each segment
  # (the 4000 tasks are independent).  Rounding to whole steps moves the CDF by at
  # most 0.003; the test's critical D at p = 1e-3 is 0.031.
  for segment in range(4):
    result = stats.kstest(lengths[:, segment] / 1000, stats.beta(1, 3).cdf)
    assert result.pvalue > 1e-3, (segment, result)


def test_equispaced_events_at_multiples_of_period():
  state, final, tasks = run(schedules.get("equispaced"), _config(R=3, num_steps=100))
  for changes in _segments_of(tasks):
    np.testing.assert_array_equal(changes, [33, 66])
  np.testing.assert_array_equal(schedules.get("equispaced").resample_steps(final), [33, 66])


@pytest.mark.parametrize("name", schedules.names())
def test_state_holds_everything_a_resumed_run_needs(name):
  """Updating steps 0..T-1 at once equals updating 0..s-1, then s..T-1 from the state
  reached, in another compiled program (as a resumed run does): the state carries
  all the schedule knows."""
  module = schedules.get(name)
  config = _config(gamma=0.3, R=3)
  keys = jax.random.split(jax.random.PRNGKey(1), 50)

  def advance(state, first, last):
    def body(state, i):
      state = module.update(state, i, keys[i])
      return state, module.current_tasks(state)
    return lax.scan(body, state, jnp.arange(first, last))

  start = module.init(jax.random.PRNGKey(5), config)
  _, whole = jax.jit(lambda s: advance(s, 0, 50))(start)
  middle, head = jax.jit(lambda s: advance(s, 0, 20))(start)
  _, tail = jax.jit(lambda s: advance(s, 20, 50), donate_argnums=0)(middle)
  np.testing.assert_array_equal(np.concatenate([head, tail]), whole)
  assert whole.shape == (50, 3, 2)
  # The tasks moved (so the check had work to do), except in the schedule that never
  # moves them.
  assert bool(np.any(whole[-1] != whole[0])) == (name != "stationary"), name
  # Another init key gives another task set.
  other = module.current_tasks(module.init(jax.random.PRNGKey(6), config))
  assert np.all(np.asarray(other) != np.asarray(module.current_tasks(start)))


def test_mala_moves_come_from_the_step_keys():
  config = _config(gamma=0.3)
  start = mala.init(jax.random.PRNGKey(5), config)

  def final_tasks(keys):
    return np.asarray(jax.jit(lambda s: lax.fori_loop(
        0, 50, lambda i, s: mala.update(s, i, keys[i]), s))(start).tasks)

  keys = jax.random.split(jax.random.PRNGKey(1), 50)
  same = final_tasks(keys)
  np.testing.assert_array_equal(final_tasks(keys), same)
  other = final_tasks(jax.random.split(jax.random.PRNGKey(2), 50))
  assert np.all(other != same)  # every task took other moves


def test_stationary_never_moves_and_supports_infinite_m():
  _, _, tasks = run(schedules.get("stationary"), _config())
  assert np.all(tasks == tasks[0])
  state = schedules.get("stationary").init(jax.random.PRNGKey(0), _config(M=-1))
  assert state.tasks.shape == (0, 2)


def test_unknown_schedule_lists_the_valid_ones():
  with pytest.raises(ValueError, match="valid: dirichlet, equispaced, mala, stationary"):
    schedules.get("brownian")
