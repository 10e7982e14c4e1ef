"""Ridge and dMMSE against direct float64 computations, prefix by prefix."""

import subprocess
import sys

import jax
import numpy as np
import pytest

from temporal_icl.core import baselines
from temporal_icl.core import data
from temporal_icl.tests import binary
from temporal_icl.tests.bayes_reference import dmmse_reference
from temporal_icl.tests.bayes_reference import ridge_reference


def _batch(D, K, M, noise_var, seed=0, B=3):
  tasks = data.sample_task_set(jax.random.PRNGKey(seed), M, D)
  xs, ys = data.sample_sequences(jax.random.PRNGKey(seed + 1), tasks, B, K, noise_var)
  return tasks, xs, ys


@pytest.mark.parametrize("D, K, noise_var", [(1, 4, 0.25), (3, 7, 0.25), (8, 16, 0.25),
                                             (5, 12, 1e-2)])
def test_ridge_matches_closed_form(D, K, noise_var):
  _, xs, ys = _batch(D, K, 4, noise_var)
  with jax.enable_x64(True):
    got = baselines.ridge(np.float64(xs), np.float64(ys), noise_var)
  np.testing.assert_allclose(got, ridge_reference(xs, ys, noise_var), rtol=1e-5, atol=1e-5)


def test_ridge_float32_is_close_to_closed_form():
  _, xs, ys = _batch(8, 16, 4, 0.25)
  np.testing.assert_allclose(baselines.ridge(xs, ys, 0.25),
                             ridge_reference(xs, ys, 0.25), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("D, K, M", [(1, 5, 1), (2, 6, 3), (4, 9, 32), (8, 16, 8)])
def test_dmmse_matches_direct_computation(D, K, M):
  tasks, xs, ys = _batch(D, K, M, 0.25)
  with jax.enable_x64(True):
    got = baselines.dmmse(np.float64(xs), np.float64(ys), np.float64(tasks), 0.25)
  np.testing.assert_allclose(got, dmmse_reference(xs, ys, tasks, 0.25), rtol=1e-5,
                             atol=1e-5)


def test_prediction_zero_is_the_prior_mean():
  tasks, xs, ys = _batch(3, 5, 6, 0.25)
  np.testing.assert_allclose(baselines.ridge(xs, ys, 0.25)[:, 0], 0.0)
  np.testing.assert_allclose(baselines.dmmse(xs, ys, tasks, 0.25)[:, 0],
                             xs[:, 0] @ tasks.mean(0), rtol=1e-5, atol=1e-6)


def test_dmmse_with_one_task_predicts_that_task():
  tasks, xs, ys = _batch(4, 10, 1, 0.25)
  np.testing.assert_allclose(baselines.dmmse(xs, ys, tasks, 0.25), xs @ tasks[0],
                             rtol=1e-5, atol=1e-5)


def test_noiseless_ridge_interpolates_once_k_exceeds_d():
  D, K = 3, 8
  tasks, xs, ys = _batch(D, K, 2, 0.0)
  with jax.enable_x64(True):
    got = np.asarray(baselines.ridge(np.float64(xs), np.float64(ys), 1e-10))
  truth = np.einsum("bkd,bd->bk", np.float64(xs),
                    np.float64(tasks)[np.argmin(np.abs(
                        ys[:, :1, None] - xs[:, :1] @ tasks.T).squeeze(1), -1)])
  np.testing.assert_allclose(got[:, D:], truth[:, D:], atol=1e-6)
  assert np.abs(got[:, 1] - truth[:, 1]).max() > 1e-3  # underdetermined before


def test_dmmse_is_stable_and_concentrates_with_tiny_noise():
  tasks, xs, ys = _batch(4, 64, 16, 1e-4)
  got = baselines.dmmse(xs, ys, tasks, 1e-4)
  # Every prefix equals the float64 references (log-weights reach −1e6 here).
  np.testing.assert_allclose(got, dmmse_reference(xs, ys, tasks, 1e-4), rtol=0, atol=1e-5)
  ridge, ridge_truth = baselines.ridge(xs, ys, 1e-4), ridge_reference(xs, ys, 1e-4)
  # Below D = 4 pairs X_kᵀX_k + 1e-4 I is nearly singular, so float32 is off by
  # ~0.02 there (measured 0.023); determined from k = D on.
  np.testing.assert_allclose(ridge[:, :4], ridge_truth[:, :4], rtol=0, atol=0.1)
  np.testing.assert_allclose(ridge[:, 4:], ridge_truth[:, 4:], rtol=0, atol=1e-4)
  true_preds = np.einsum("bkd,md->bkm", xs, tasks)
  errors = np.abs(true_preds[:, 1:] - np.asarray(ys)[:, 1:, None]).mean(1)
  truth = true_preds[np.arange(3), :, errors.argmin(-1)]
  np.testing.assert_allclose(got[:, 5:], truth[:, 5:], atol=1e-3)


@pytest.mark.parametrize("which", ["ridge", "dmmse"])
def test_prediction_k_ignores_pairs_from_k_on(which):
  tasks, xs, ys = _batch(3, 8, 5, 0.25)
  f = jax.jit(lambda xs, ys: baselines.ridge(xs, ys, 0.25) if which == "ridge"
              else baselines.dmmse(xs, ys, tasks, 0.25))
  base = f(xs, ys)
  k = 4
  ys2 = ys.at[:, k:].add(3.0)
  xs2 = xs.at[:, k + 1:].multiply(-2.0)
  changed = f(xs2, ys2)
  np.testing.assert_allclose(changed[:, :k + 1], base[:, :k + 1], rtol=1e-6, atol=1e-6)
  assert np.abs(changed[:, k + 1:] - base[:, k + 1:]).max() > 1e-3


@pytest.mark.parametrize("D", [1, 2, 5, 8])
def test_solve_spd_matches_numpy(D):
  rng = np.random.default_rng(D)
  root = rng.normal(size=(6, 3, D, D))
  a = root @ np.swapaxes(root, -1, -2) + 0.1 * np.eye(D)  # SPD, condition up to ~1e3
  b = rng.normal(size=(6, 3, D))
  expected = np.linalg.solve(a, b[..., None])[..., 0]
  got = baselines.solve_spd(np.float32(a), np.float32(b))
  np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3)


_TWO_SOLVES = """
import jax
from temporal_icl.core import baselines
from temporal_icl.core import data
tasks = data.sample_task_set(jax.random.PRNGKey(0), 8, 8)
batches = [data.sample_sequences(jax.random.PRNGKey(i), tasks, 1024, 16, 0.25) for i in (1, 2)]
both = jax.jit(lambda a, b: (baselines.ridge(*a, 0.25), baselines.ridge(*b, 0.25)))
for _ in range(60):
  jax.block_until_ready(both(*batches))
print("finished")
"""


def test_two_ridge_solves_in_one_program_never_wait_on_each_other():
  # With jnp.linalg.cholesky + cho_solve this program hung (no CPU use) within 20
  # calls, every time, on a 2-core machine with jaxlib 0.10.2: two LAPACK calls
  # held both intra-op threads while waiting for work queued behind them.
  done = subprocess.run([sys.executable, "-c", _TWO_SOLVES], capture_output=True, text=True,
                        timeout=120, env=binary.cpu_env(1, test_flags=False))
  assert done.returncode == 0 and "finished" in done.stdout, done.stderr[-2000:]
