"""Tests for temporal_icl.core.datasets.iclr_eval: the stored evaluation sets.

One custom set is built once for the module (D=4, K=16, 512 sequences, seed 1:
the shipped d4_k16 shapes with another seed, so eager JAX compiles the sampler's
ops for few shapes) in two chunks, and read back through TFDS.
"""

import os

import jax
import numpy as np
import pytest

from temporal_icl.core import data
from temporal_icl.core.datasets import iclr_eval

D, K, NOISE_VAR, SIZE, SEED = 4, 16, 0.25, 512, 1


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))


def custom_builder(data_dir):
  config = iclr_eval.make_builder_config(D, K, NOISE_VAR, SIZE, SEED)
  return iclr_eval.IclrEval(config=config, data_dir=data_dir)


@pytest.fixture(scope="module")
def stored(data_dir):
  """The custom set, generated in two chunks of 256 and read back."""
  starts = []
  sample_sequences = data.sample_sequences

  def recording(*args, start=0, **kwargs):
    starts.append(start)
    return sample_sequences(*args, start=start, **kwargs)

  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(iclr_eval, "_CHUNK_SIZE", SIZE // 2)
    mp.setattr(data, "sample_sequences", recording)
    arrays = iclr_eval.read_eval_batch(custom_builder(data_dir), return_tasks=True)
  assert starts == [0, SIZE // 2]
  return arrays


def test_shapes_dtypes_and_info(stored, data_dir):
  xs, ys, ts = stored
  assert xs.shape == (SIZE, K, D) and ys.shape == (SIZE, K) and ts.shape == (SIZE, D)
  assert xs.dtype == ys.dtype == ts.dtype == np.float32
  builder = custom_builder(data_dir)
  assert builder.name == "iclr_eval" and str(builder.version) == "1.0.0"
  assert builder.builder_config.name == "d4_k16_n0p25_s512_seed1"
  assert builder.info.splits["test"].num_examples == SIZE
  assert set(builder.info.features) == {"index", "x", "y", "task"}


def test_equals_sample_sequences_exactly(stored):
  # Two independent paths: chunked generation, TFDS write and read, versus
  # one call for the whole batch (example i always comes from fold_in(key, i)).
  want = data.sample_sequences(jax.random.PRNGKey(SEED), data.infinite_task_set(D), SIZE,
                               K, NOISE_VAR, return_tasks=True)
  for got, expected in zip(stored, want):
    np.testing.assert_array_equal(got, np.asarray(expected))


def test_y_is_linear_in_x_within_noise(stored):
  xs, ys, ts = stored
  residuals = ys - np.einsum("nkd,nd->nk", xs, ts)
  # n = 8192 residuals: SE of the variance estimate is σ²·sqrt(2/n) ≈ 0.0039.
  n = residuals.size
  assert abs(residuals.var() - NOISE_VAR) < 5 * NOISE_VAR * np.sqrt(2 / n)
  assert abs(residuals.mean()) < 5 * np.sqrt(NOISE_VAR / n)
  # Tasks come from N(0, I_D): 2048 entries, SE of the variance ≈ 0.031.
  assert abs(ts.var() - 1.0) < 5 * np.sqrt(2 / ts.size)


def test_reading_again_reuses_the_files(stored, data_dir):
  builder = custom_builder(data_dir)
  assert builder.is_prepared()
  files = sorted(os.listdir(builder.data_dir))
  mtimes = [os.path.getmtime(os.path.join(builder.data_dir, f)) for f in files]
  again = iclr_eval.read_eval_batch(builder, return_tasks=True)
  for first, second in zip(stored, again):
    np.testing.assert_array_equal(first, second)
  assert sorted(os.listdir(builder.data_dir)) == files
  assert [os.path.getmtime(os.path.join(builder.data_dir, f))
          for f in files] == mtimes


def test_load_eval_batch_shipped_config(data_dir):
  xs, ys = iclr_eval.load_eval_batch("iclr_eval/d4_k16", data_dir=data_dir)
  want_xs, want_ys = data.sample_sequences(
      jax.random.PRNGKey(0), data.infinite_task_set(4), 512, 16, 0.25)
  np.testing.assert_array_equal(xs, np.asarray(want_xs))
  np.testing.assert_array_equal(ys, np.asarray(want_ys))
  again_xs, again_ys = iclr_eval.load_eval_batch("d4_k16", data_dir=data_dir)
  np.testing.assert_array_equal(xs, again_xs)
  np.testing.assert_array_equal(ys, again_ys)


def test_shipped_configs():
  configs = iclr_eval.IclrEval.builder_configs
  assert set(configs) == {"d8_k16", "d4_k16", "d1_k64"}
  paper = configs["d8_k16"]
  assert (paper.D, paper.K, paper.noise_var, paper.size, paper.seed) == (
      8, 16, 0.25, 1024, 0)
  assert (configs["d1_k64"].D, configs["d1_k64"].K) == (1, 64)
  assert iclr_eval.make_builder_config(8, 16, 0.25, 1024, 0, name="d8_k16") is paper


@pytest.mark.parametrize("name", ["iclr_eval/d3_k16", "mnist/d8_k16", "nope", ""])
def test_unknown_name_raises(name, tmp_path):
  with pytest.raises(ValueError, match="available: iclr_eval/d8_k16"):
    iclr_eval.load_eval_batch(name, data_dir=str(tmp_path))
  assert not os.listdir(tmp_path)


def test_bad_custom_configs_raise():
  with pytest.raises(ValueError, match="taken by the shipped set"):
    iclr_eval.make_builder_config(8, 16, 0.25, 512, 0, name="d8_k16")
  with pytest.raises(ValueError, match="D must be a positive integer"):
    iclr_eval.make_builder_config(0, 16, 0.25, 32, 0)
  with pytest.raises(ValueError, match="noise_var"):
    iclr_eval.make_builder_config(2, 16, -1.0, 32, 0)
