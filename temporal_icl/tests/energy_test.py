"""Energy distance (temporal_icl.measurements.methods.energy), and the OLS task estimates and
reference priors of temporal_icl.measurements.methods.predictive."""

import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from temporal_icl.measurements.methods import energy
from temporal_icl.measurements.methods import predictive
from temporal_icl.tests import binary


def _brute_terms(a, b):
  """float64 (cross, within_a, within_b) from full distance matrices."""
  a = np.asarray(a, np.float64)
  b = np.asarray(b, np.float64)
  n, m = len(a), len(b)
  cross = cdist(a, b).mean()
  within_a = cdist(a, a).sum() / (n * (n - 1))  # Diagonal is 0: sum is over i≠j.
  within_b = cdist(b, b).sum() / (m * (m - 1))
  return cross, within_a, within_b


def _samples(seed, n, m, D):
  """Two float32 samples from different Gaussians, so ED is well above 0."""
  ka, kb = jax.random.split(jax.random.PRNGKey(seed))
  a = jax.random.normal(ka, (n, D))
  b = 2.0 * jax.random.normal(kb, (m, D)) + 1.0
  return a, b


# (n, m, D, block_size): n ≠ m, n not a multiple of the block, D = 1, blocks
# smaller than n (down to 1 row), a block larger than n, the minimal n = m = 2.
CASES = [
    (64, 64, 3, 16),
    (37, 61, 5, 8),
    (100, 7, 1, 32),
    (13, 200, 8, 128),
    (301, 257, 4, 64),
    (50, 40, 2, 1),
    (2, 2, 2, 1),
]


@pytest.mark.parametrize("n, m, D, block_size", CASES)
def test_matches_float64_brute_force(n, m, D, block_size):
  a, b = _samples(n * 1000 + m, n, m, D)
  expected = _brute_terms(a, b)
  got = energy.energy_terms(a, b, block_size=block_size)
  # Each term is a mean of float32 distances (each good to ~1 ulp ≈ 6e-8
  # relative) summed in float32 over ≤ 300 columns then ≤ 300 rows; the error
  # is ~1e-7..1e-6 relative, so 1e-5 leaves margin while a wrong normaliser
  # (e.g. n² instead of n(n−1), ≥ 0.3% here) or counting padded rows fails.
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  # ED = 2·cross − within_a − within_b can be much smaller than its terms, so
  # its float32 error is judged against the terms' scale, not against ED.
  scale = 2 * expected[0] + expected[1] + expected[2]
  ed_expected = 2 * expected[0] - expected[1] - expected[2]
  ed = float(energy.energy_distance(a, b, block_size=block_size))
  assert abs(ed - ed_expected) <= 1e-5 * scale
  # Away from 0 (ED ≈ 0.03–0.4 of the scale at these seeds; negative for
  # m = 7, D = 1, where the unbiased estimate is dominated by noise), ED itself
  # is good to 1e-4 relative (observed ≤ 3e-6).
  assert abs(ed_expected) > 0.02 * scale
  assert abs(ed - ed_expected) <= 1e-4 * abs(ed_expected)


def test_block_size_does_not_change_result():
  a, b = _samples(7, 203, 150, 6)
  results = [float(energy.energy_distance(a, b, block_size=s))
             for s in (1, 5, 64, 203, 1000)]
  np.testing.assert_allclose(results, results[0], rtol=1e-5)


def test_symmetric():
  a, b = _samples(3, 120, 77, 4)
  ab = float(energy.energy_distance(a, b, block_size=32))
  ba = float(energy.energy_distance(b, a, block_size=32))
  cross = float(energy.energy_terms(a, b)[0])
  assert abs(ab - ba) <= 1e-6 * cross
  assert ab > 0.1


def test_same_array_gives_minus_two_over_n_times_within():
  # With a = b: cross = Σ_{i≠j} d_ij / n² (the n diagonal pairs are 0) and
  # within = Σ_{i≠j} d_ij / (n(n−1)), so ED = 2·cross − 2·within
  # = −(2/n)·within, not 0 (it would be 0 with V-statistic within terms).
  n = 200
  a = jax.random.normal(jax.random.PRNGKey(11), (n, 3))
  _, within, _ = _brute_terms(a, a)
  ed = float(energy.energy_distance(a, a, block_size=64))
  expected = -2.0 / n * within
  assert expected < -0.01
  # Cancellation: ED ~ 2·within / n, its float32 error ~ 1e-6·within.
  assert abs(ed - expected) <= 1e-5 * within


def test_same_distribution_near_zero_and_shift_detected():
  # Ten seeds of two independent N(0, I_4) samples, n = m = 2000, and the same
  # pairs with the second sample shifted by 0.5 in one coordinate.  The
  # estimator is unbiased, so the null EDs have mean 0 and a spread set by
  # the sampling noise (SD ≈ 1.3e-3 at these seeds).  Their mean must be
  # within 3 standard errors of 0: V-statistic within terms would add a bias
  # of (within_a + within_b)/n ≈ 2.7e-3, about 7 standard errors.  The
  # shifted EDs (≈ 0.06–0.10) must exceed 20 null SDs and 10 × the largest
  # null |ED|.
  n, D = 2000, 4
  shift = jnp.zeros(D).at[0].set(0.5)
  null, shifted = [], []
  for seed in range(10):
    ka, kb = jax.random.split(jax.random.PRNGKey(100 + seed))
    a = jax.random.normal(ka, (n, D))
    b = jax.random.normal(kb, (n, D))
    null.append(float(energy.energy_distance(a, b)))
    shifted.append(float(energy.energy_distance(a, b + shift)))
  null = np.array(null)
  sd = null.std(ddof=1)
  assert abs(null.mean()) < 3 * sd / np.sqrt(len(null))
  assert np.abs(null).max() < 5e-3
  assert min(shifted) > 20 * sd
  assert min(shifted) > 10 * np.abs(null).max()


def _largest_hlo_buffer(compiled):
  """Element count of the largest array shape anywhere in compiled HLO text.

  Counts shapes inside fusions too (which need not be materialised), so it
  over-estimates the largest buffer: a conservative check.
  """
  shapes = re.findall(r"\b(?:f|s|u|pred|bf)\d*\[([\d,]+)\]", compiled.as_text())
  return max(int(np.prod([int(d) for d in s.split(",")])) for s in shapes)


def _naive_energy_distance(a, b):
  n, m = a.shape[0], b.shape[0]
  dist = lambda x, y: jnp.sqrt(((x[:, None] - y[None]) ** 2).sum(-1))
  return (2 * dist(a, b).mean() - dist(a, a).sum() / (n * (n - 1))
          - dist(b, b).sum() / (m * (m - 1)))


def test_memory_does_not_scale_with_n_times_m():
  # n = m = 5000, D = 8: one [n, m] float32 matrix is 100 MB, the [n, m, D]
  # differences 800 MB.  The blocked version needs O(block·m) (≈ 3 MB temp on
  # CPU at block 128).  Compile only.
  n, D = 5000, 8
  spec = jax.ShapeDtypeStruct((n, D), jnp.float32)
  compiled = energy.energy_distance.lower(spec, spec).compile()
  # No array of n·m or more elements appears anywhere in the program...
  assert _largest_hlo_buffer(compiled) < n * n
  # ...and XLA's buffer assignment agrees, where the backend reports it.
  stats = compiled.memory_analysis()
  if stats is not None:
    assert stats.temp_size_in_bytes < 50e6
  # Control: the same check flags a full-matrix implementation.
  naive = jax.jit(_naive_energy_distance).lower(spec, spec).compile()
  assert _largest_hlo_buffer(naive) >= n * n


def test_gradient_is_finite_with_zero_distances():
  a = jax.random.normal(jax.random.PRNGKey(0), (10, 3))
  a = a.at[1].set(a[0])  # A duplicated point: ‖a_0 − a_1‖ = 0.
  grad = jax.grad(energy.energy_distance)(a, a[::-1] + 1.0)
  assert np.all(np.isfinite(np.asarray(grad)))


def test_rejects_bad_shapes():
  with pytest.raises(ValueError, match="at least 2"):
    energy.energy_distance(jnp.zeros((1, 3)), jnp.zeros((5, 3)))
  with pytest.raises(ValueError, match=r"\[n, D\]"):
    energy.energy_distance(jnp.zeros((4, 3)), jnp.zeros((5, 2)))


@pytest.mark.parametrize("K", [5, 8, 20])
def test_ols_recovers_task_without_noise(K):
  S, D = 64, 5
  kx, kt = jax.random.split(jax.random.PRNGKey(K))
  xs = jax.random.normal(kx, (S, K, D))
  ts = jax.random.normal(kt, (S, D))
  ys = jnp.einsum("skd,sd->sk", xs, ts)
  estimate = predictive.ols_fit(xs, ys)
  assert estimate.shape == (S, D)
  # An SVD solve is backward stable: the float32 error is a small multiple of
  # cond(X)·eps·‖t‖ (≤ 3× here; the square K = D systems reach cond ≈ 1e3 at
  # this seed), so allow 10× per sequence.
  cond = np.linalg.cond(np.asarray(xs, np.float64))
  error = np.linalg.norm(np.asarray(estimate) - np.asarray(ts), axis=1)
  bound = 10 * cond * np.finfo(np.float32).eps * np.linalg.norm(ts, axis=1)
  assert np.all(error <= bound)
  assert np.all(bound < 1e-2)  # Well-posed enough for the check to mean something.


def _numpy_lstsq(xs, ys):
  xs = np.asarray(xs, np.float64)
  ys = np.asarray(ys, np.float64)
  return np.stack([np.linalg.lstsq(x, y, rcond=None)[0] for x, y in zip(xs, ys)])


def test_ols_matches_numpy_lstsq_with_noise():
  S, K, D = 32, 12, 4
  kx, kt, ke = jax.random.split(jax.random.PRNGKey(5), 3)
  xs = jax.random.normal(kx, (S, K, D))
  ts = jax.random.normal(kt, (S, D))
  ys = jnp.einsum("skd,sd->sk", xs, ts) + 0.5 * jax.random.normal(ke, (S, K))
  estimate = predictive.ols_fit(xs, ys)
  np.testing.assert_allclose(estimate, _numpy_lstsq(xs, ys), atol=1e-5)
  assert np.abs(np.asarray(estimate) - np.asarray(ts)).max() > 1e-2  # Noise mattered.


def test_ols_minimum_norm_when_k_below_d():
  # K < D: infinitely many exact fits; ols_fit returns the minimum-norm one,
  # pinv(X) y, which interpolates y and lies in the row space of X.
  S, K, D = 16, 3, 6
  kx, kt = jax.random.split(jax.random.PRNGKey(9))
  xs = jax.random.normal(kx, (S, K, D))
  ts = jax.random.normal(kt, (S, D))
  ys = jnp.einsum("skd,sd->sk", xs, ts)
  estimate = np.asarray(predictive.ols_fit(xs, ys), np.float64)
  np.testing.assert_allclose(estimate, _numpy_lstsq(xs, ys), atol=1e-5)
  np.testing.assert_allclose(
      np.einsum("skd,sd->sk", np.asarray(xs), estimate), ys, atol=1e-5)
  # Shorter than the true task (it is its projection onto the row space).
  assert np.all(np.linalg.norm(estimate, axis=1)
                < np.linalg.norm(np.asarray(ts), axis=1))


def test_ols_rank_deficient_splits_weight_between_equal_columns():
  # Columns 0 and 1 are identical, so only t_0 + t_1 is identified.  The
  # smallest singular value is ~eps·σ_max and must be cut off (rcond); the
  # minimum-norm solution then gives both coefficients (t_0 + t_1) / 2.
  S, K, D = 8, 10, 4
  kx, kt = jax.random.split(jax.random.PRNGKey(21))
  xs = jax.random.normal(kx, (S, K, D))
  xs = xs.at[:, :, 1].set(xs[:, :, 0])
  ts = jax.random.normal(kt, (S, D))
  ys = jnp.einsum("skd,sd->sk", xs, ts)
  estimate = np.asarray(predictive.ols_fit(xs, ys))
  half = (np.asarray(ts[:, 0]) + np.asarray(ts[:, 1])) / 2
  np.testing.assert_allclose(estimate[:, 0], half, atol=1e-4)
  np.testing.assert_allclose(estimate[:, 1], half, atol=1e-4)
  np.testing.assert_allclose(estimate[:, 2:], ts[:, 2:], atol=1e-4)


def test_ridge_prior_moments():
  sample = predictive.sample_ridge_prior(jax.random.PRNGKey(0), 20000, 3)
  assert sample.shape == (20000, 3)
  # SE of the mean is 1/sqrt(20000) ≈ 0.007; of the covariance ≈ 0.01.
  np.testing.assert_allclose(sample.mean(0), 0.0, atol=0.035)
  np.testing.assert_allclose(np.cov(np.asarray(sample).T), np.eye(3), atol=0.05)


def test_dmmse_prior_draws_uniformly_from_task_set():
  tasks = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
  sample = predictive.sample_dmmse_prior(jax.random.PRNGKey(2), tasks, 8000)
  assert sample.shape == (8000, 3)
  distance = np.abs(np.asarray(sample)[:, None] - np.asarray(tasks)[None]).sum(-1)
  np.testing.assert_array_equal(distance.min(1), 0.0)
  counts = np.bincount(distance.argmin(1), minlength=4)
  # Binomial SD at n = 8000, p = 1/4 is ~39; allow 5 SD.
  np.testing.assert_allclose(counts, 2000, atol=5 * 39)


_TWO_DEVICE_FITS = """
import jax, numpy as np
from jax.sharding import Mesh, PartitionSpec as P
from temporal_icl.measurements.methods import predictive
from temporal_icl.tests import binary
mesh = Mesh(np.asarray(jax.devices()), ("d",))
fit = jax.jit(jax.shard_map(predictive.ols_fit, mesh=mesh, in_specs=(P("d"), P("d")),
                            out_specs=P("d")))
xs = jax.random.normal(jax.random.PRNGKey(0), (5000, 16, 8))
for _ in range(40):
  jax.block_until_ready(fit(xs, xs[..., 0]))
print("finished")
"""


def test_ols_fits_on_two_devices_at_once_never_wait_on_each_other():
  # As one batched jnp.linalg.lstsq per device this program hung (no CPU use) on
  # a 2-core machine with jaxlib 0.10.2, within 120 s every time: the two
  # devices' LAPACK SVDs held both intra-op threads waiting for work queued
  # behind them.  A demo-size run with prior measurements on 2 devices hung so.
  env = binary.cpu_env(2, test_flags=False)
  done = subprocess.run([sys.executable, "-c", _TWO_DEVICE_FITS], capture_output=True,
                        text=True, timeout=120, env=env)
  assert done.returncode == 0 and "finished" in done.stdout, done.stderr[-2000:]
