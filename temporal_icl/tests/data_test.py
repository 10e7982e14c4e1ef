"""Tests for temporal_icl.core.data: the sampling distribution and device-count invariance."""

import jax
import jax.numpy as jnp
import numpy as np

from temporal_icl.core import data


def test_shapes_and_linear_model():
  tasks = data.sample_task_set(jax.random.PRNGKey(0), 5, 3)
  xs, ys, ts = data.sample_sequences(
      jax.random.PRNGKey(1), tasks, 7, 11, 0.0, return_tasks=True)
  assert xs.shape == (7, 11, 3) and ys.shape == (7, 11) and ts.shape == (7, 3)
  # Without noise y is exactly t·x, and every task comes from the set.
  np.testing.assert_allclose(ys, jnp.einsum("bkd,bd->bk", xs, ts), atol=1e-5)
  distances = jnp.abs(ts[:, None, :] - tasks[None]).sum(-1).min(-1)
  np.testing.assert_array_equal(distances, 0.0)


def test_noise_variance_and_input_moments():
  # n = 200k residuals: SE of the variance estimate is σ²·sqrt(2/n) ≈ 0.0008.
  tasks = data.sample_task_set(jax.random.PRNGKey(0), 4, 2)
  xs, ys, ts = data.sample_sequences(
      jax.random.PRNGKey(2), tasks, 4000, 50, 0.25, return_tasks=True)
  residuals = ys - jnp.einsum("bkd,bd->bk", xs, ts)
  assert abs(float(residuals.var()) - 0.25) < 5 * 0.25 * np.sqrt(2 / residuals.size)
  assert abs(float(residuals.mean())) < 5 * 0.5 / np.sqrt(residuals.size)
  assert abs(float(xs.var()) - 1.0) < 5 * np.sqrt(2 / xs.size)


def test_tasks_drawn_uniformly_from_set():
  tasks = data.sample_task_set(jax.random.PRNGKey(0), 4, 3)
  _, _, ts = data.sample_sequences(
      jax.random.PRNGKey(3), tasks, 8000, 1, 0.25, return_tasks=True)
  index = jnp.argmin(jnp.abs(ts[:, None] - tasks[None]).sum(-1), axis=1)
  counts = np.bincount(np.asarray(index), minlength=4)
  # Binomial SD at n=8000, p=1/4 is ~39; allow 5 SD.
  np.testing.assert_allclose(counts, 2000, atol=5 * 39)


def test_infinite_task_distribution_is_standard_normal():
  _, _, ts = data.sample_sequences(
      jax.random.PRNGKey(4), data.infinite_task_set(3), 20000, 2, 0.25, return_tasks=True)
  # 20k draws: SE of mean 0.007, of variance 0.01.
  np.testing.assert_allclose(ts.mean(0), 0.0, atol=0.035)
  np.testing.assert_allclose(jnp.cov(ts.T), np.eye(3), atol=0.05)
  assert len(np.unique(np.asarray(ts), axis=0)) == 20000  # a fresh task each time


def test_a_finite_task_set_is_drawn_from_the_standard_normal():
  # The M training tasks are i.i.d. N(0, I_D), the prior ridge assumes: with M =
  # 20000, the SE of a mean is 0.007 and of a variance 0.01.
  tasks = data.sample_task_set(jax.random.PRNGKey(5), 20000, 3)
  assert tasks.shape == (20000, 3)
  np.testing.assert_allclose(tasks.mean(0), 0.0, atol=0.035)
  np.testing.assert_allclose(jnp.cov(tasks.T), np.eye(3), atol=0.05)


def test_the_empty_task_set_is_m_infinite():
  tasks = data.infinite_task_set(3)
  assert tasks.shape == (0, 3) and data.is_infinite_set(tasks)
  assert not data.is_infinite_set(data.sample_task_set(jax.random.PRNGKey(0), 1, 3))


def test_shards_concatenate_to_the_global_batch():
  tasks = data.sample_task_set(jax.random.PRNGKey(0), 6, 2)
  key = jax.random.PRNGKey(5)
  full = data.sample_sequences(key, tasks, 8, 4, 0.25)
  parts = [data.sample_sequences(key, tasks, 4, 4, 0.25, start=s) for s in (0, 4)]
  for whole, (a, b) in zip(full, zip(*parts)):
    np.testing.assert_array_equal(whole, jnp.concatenate([a, b]))
