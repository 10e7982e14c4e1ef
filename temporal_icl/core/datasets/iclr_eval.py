"""`iclr_eval`: fixed held-out sets of in-context linear regression sequences.

Each example is one sequence of K pairs (x_k, y_k) with x_k ~ N(0, I_D) and
y_k = t·x_k + ε_k, ε_k ~ N(0, σ²), for a task t drawn fresh from N(0, I_D)
(the M = ∞ task distribution, i.e. the Gaussian prior that ridge regression is
Bayes-optimal for).  The examples are exactly those of

  data.sample_sequences(jax.random.PRNGKey(seed), data.infinite_task_set(D), size,
                        K, noise_var, return_tasks=True)

generated offline (nothing is downloaded): example i is the i-th sequence of
that batch.  Storing them fixes the evaluation set on disk, so runs can be
compared on identical sequences whatever their own seeds.

Shipped configs (``IclrEval.builder_configs``):

  d8_k16  D=8, K=16, σ²=0.25, 1024 sequences, seed 0  (the paper's eval set)
  d4_k16  D=4, K=16, σ²=0.25,  512 sequences, seed 0  (configs/demo.py sizes)
  d1_k64  D=1, K=64, σ²=0.25, 1024 sequences, seed 0  (configs/prior_tracking.py)

Usage:

  xs, ys = iclr_eval.load_eval_batch("iclr_eval/d8_k16", data_dir=...)

prepares the set under ``data_dir`` on first use and returns xs [N, K, D] and
ys [N, K] as float32 numpy arrays in example order.  Custom sets:

  builder = iclr_eval.IclrEval(
      config=iclr_eval.make_builder_config(D=2, K=4, noise_var=0.1, size=32,
                                           seed=3),
      data_dir=...)
  xs, ys = iclr_eval.read_eval_batch(builder)
"""

import dataclasses
from typing import Dict, Optional, Tuple

import jax
import numpy as np
import tensorflow_datasets as tfds

from temporal_icl.core import data

_NAME = "iclr_eval"
_SPLIT = "test"
# Sequences generated per call to data.sample_sequences.  Example i comes from
# its own key fold_in(key, i), so chunking does not change the data.
_CHUNK_SIZE = 4096

_DESCRIPTION = """\
Fixed held-out evaluation sets for in-context linear regression.

Each example is one sequence of K pairs (x_k, y_k), x_k ~ N(0, I_D),
y_k = task·x_k + eps_k with eps_k ~ N(0, noise_var), and a task drawn fresh from
N(0, I_D) for every sequence (task diversity M = infinity).  Example i is the
i-th sequence of temporal_icl.core.data.sample_sequences(PRNGKey(seed),
infinite_task_set(D), size, K, noise_var, return_tasks=True); features `x` [K, D], `y` [K], `task` [D]
and `index` = i.  The sets are generated offline; nothing is downloaded.
"""

_CITATION = """\
@inproceedings{temporal_task_diversity_2026,
  title = {Temporal Task Diversity: Inductive Biases Under Non-Stationarity in
           Synthetic Sequence Modelling},
  booktitle = {TAIS},
  year = {2026},
}

@inproceedings{raventos2023pretraining,
  title = {Pretraining task diversity and the emergence of non-{B}ayesian
           in-context learning for regression},
  author = {Ravent{\\'o}s, Allan and Paul, Mansheej and Chen, Feng and
            Ganguli, Surya},
  booktitle = {Advances in Neural Information Processing Systems},
  year = {2023},
}
"""


@dataclasses.dataclass(eq=False)
class IclrEvalConfig(tfds.core.BuilderConfig):
  """One evaluation set: `size` sequences of K pairs in D dimensions.

  Attributes:
    D: task / input dimension.
    K: in-context pairs per sequence.
    noise_var: observation noise variance σ².
    size: number of sequences (examples).
    seed: the set is sampled from ``jax.random.PRNGKey(seed)``.
  """

  D: int = 8
  K: int = 16
  noise_var: float = 0.25
  size: int = 1024
  seed: int = 0

  def __post_init__(self):
    problems = []
    for field in ("D", "K", "size"):
      value = getattr(self, field)
      if not isinstance(value, (int, np.integer)) or value < 1:
        problems.append(f"{field} must be a positive integer, got {value!r}.")
    if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
      problems.append(f"seed must be a non-negative integer, got {self.seed!r}.")
    if not np.isfinite(self.noise_var) or self.noise_var < 0:
      problems.append(f"noise_var must be finite and >= 0, got {self.noise_var!r}.")
    if problems:
      raise ValueError(f"iclr_eval config {self.name!r}: " + " ".join(problems))


def default_config_name(D: int, K: int, noise_var: float, size: int,
                        seed: int) -> str:
  """A config name that spells out every field, e.g. d2_k4_n0p25_s32_seed0."""
  noise = format(float(noise_var), "g").replace(".", "p").replace("-", "m")
  return f"d{D}_k{K}_n{noise}_s{size}_seed{seed}"


def _describe(D, K, noise_var, size, seed) -> str:
  return (f"{size} sequences of K={K} pairs, D={D}, noise_var={noise_var}, "
          f"tasks ~ N(0, I_D), sampled from PRNGKey({seed}).")


def _shipped(name: str, D: int, K: int, noise_var: float, size: int, seed: int,
             note: str) -> IclrEvalConfig:
  return IclrEvalConfig(
      name=name, description=f"{_describe(D, K, noise_var, size, seed)} {note}",
      D=D, K=K, noise_var=noise_var, size=size, seed=seed)


_SHIPPED_CONFIGS = (
    _shipped("d8_k16", 8, 16, 0.25, 1024, 0, "The paper's evaluation set."),
    _shipped("d4_k16", 4, 16, 0.25, 512, 0, "The laptop demo's sizes."),
    _shipped("d1_k64", 1, 64, 0.25, 1024, 0, "The 1-D prior-tracking setting."),
)


def make_builder_config(D: int, K: int, noise_var: float, size: int, seed: int,
                        name: Optional[str] = None) -> IclrEvalConfig:
  """A config for a custom evaluation set; pass it as ``IclrEval(config=...)``.

  Args:
    D: task / input dimension.
    K: in-context pairs per sequence.
    noise_var: observation noise variance σ².
    size: number of sequences.
    seed: PRNG seed of the set.
    name: config name (its directory under data_dir/iclr_eval/); defaults to
      one spelling out every field, so different sets never share a directory.

  Returns:
    The shipped config object when ``name`` and the fields match a shipped one
    (TFDS refuses a different object under a shipped name), else a new config.

  Raises:
    ValueError: for invalid fields, or a shipped name with different fields.
  """
  if name is None:
    name = default_config_name(D, K, noise_var, size, seed)
  config = IclrEvalConfig(
      name=name, description=_describe(D, K, noise_var, size, seed),
      D=D, K=K, noise_var=noise_var, size=size, seed=seed)
  for shipped in _SHIPPED_CONFIGS:
    if shipped.name == name:
      if _fields(shipped) != _fields(config):
        raise ValueError(
            f"iclr_eval config name {name!r} is taken by the shipped set "
            f"{_fields(shipped)}; choose another name for {_fields(config)}.")
      return shipped
  return config


def _fields(config: IclrEvalConfig) -> Dict[str, float]:
  return dict(D=config.D, K=config.K, noise_var=config.noise_var,
              size=config.size, seed=config.seed)


class IclrEval(tfds.core.GeneratorBasedBuilder):
  """Fixed held-out in-context linear regression sequences (M = ∞ tasks)."""

  name = _NAME
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = list(_SHIPPED_CONFIGS)
  # The file defining the builder.  TFDS 4.9.10 computes this with a branch
  # that needs the `importlib_resources` backport, which it declares only for
  # Python < 3.9 (tensorflow/datasets#11212); naming it here skips that branch.
  # TFDS looks for checksums.tsv beside it, finds none, and downloads nothing.
  code_path = tfds.core.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    return tfds.core.DatasetInfo(
        builder=self,
        description=_DESCRIPTION,
        features=tfds.features.FeaturesDict({
            "index": tfds.features.Scalar(
                dtype=np.int64, doc="position in the sampled batch"),
            "x": tfds.features.Tensor(shape=(c.K, c.D), dtype=np.float32),
            "y": tfds.features.Tensor(shape=(c.K,), dtype=np.float32),
            "task": tfds.features.Tensor(shape=(c.D,), dtype=np.float32),
        }),
        supervised_keys=None,
        disable_shuffling=True,  # keep example order on disk; readers sort too.
        citation=_CITATION,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Generated offline.
    return {_SPLIT: self._generate_examples()}

  def _generate_examples(self):
    c = self.builder_config
    key = jax.random.PRNGKey(c.seed)
    for start in range(0, c.size, _CHUNK_SIZE):
      count = min(_CHUNK_SIZE, c.size - start)
      xs, ys, ts = jax.device_get(data.sample_sequences(
          key, data.infinite_task_set(c.D), count, c.K, c.noise_var, start=start,
          return_tasks=True))
      for i in range(count):
        yield start + i, {
            "index": start + i,
            "x": np.asarray(xs[i], np.float32),
            "y": np.asarray(ys[i], np.float32),
            "task": np.asarray(ts[i], np.float32),
        }


def available_configs() -> Tuple[str, ...]:
  """Names of the shipped configs, e.g. ('d8_k16', 'd4_k16', 'd1_k64')."""
  return tuple(c.name for c in _SHIPPED_CONFIGS)


def read_eval_batch(builder: IclrEval, *, return_tasks: bool = False):
  """Prepares ``builder``'s set if needed and reads it whole, in example order.

  Args:
    builder: an ``IclrEval`` (shipped or custom config) with its data_dir.
    return_tasks: also return each sequence's task.

  Returns:
    xs [N, K, D], ys [N, K] (and tasks [N, D] when ``return_tasks``), float32
    numpy arrays; example i is the i-th sequence of the sampled batch.
  """
  if not builder.is_prepared():
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        compute_stats=tfds.download.ComputeStatsMode.SKIP))
  ds = builder.as_dataset(split=_SPLIT, batch_size=-1, shuffle_files=False,
                          as_supervised=False)
  examples = tfds.as_numpy(ds)
  order = np.argsort(examples["index"], kind="stable")
  c = builder.builder_config
  if not np.array_equal(examples["index"][order], np.arange(c.size)):
    raise ValueError(
        f"{builder.data_dir} holds {len(order)} examples with indices that are "
        f"not 0..{c.size - 1}; delete it to regenerate.")
  xs = np.asarray(examples["x"][order], np.float32)
  ys = np.asarray(examples["y"][order], np.float32)
  if return_tasks:
    return xs, ys, np.asarray(examples["task"][order], np.float32)
  return xs, ys


def load_eval_batch(name: str,
                    data_dir: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
  """Loads a shipped evaluation set, preparing it under data_dir on first use.

  Args:
    name: 'iclr_eval/<config>' (or just '<config>'), e.g. 'iclr_eval/d8_k16'.
    data_dir: TFDS data directory; None means TFDS's default
      ($TFDS_DATA_DIR or ~/tensorflow_datasets).

  Returns:
    xs [N, K, D] and ys [N, K], float32 numpy arrays in example order.

  Raises:
    ValueError: if ``name`` is not a shipped iclr_eval config.
  """
  dataset, _, config_name = name.rpartition("/")
  available = available_configs()
  if dataset not in ("", _NAME) or config_name not in available:
    raise ValueError(
        f"Unknown evaluation set {name!r}; available: "
        f"{', '.join(f'{_NAME}/{c}' for c in available)}.  Custom sets: "
        "read_eval_batch(IclrEval(config=make_builder_config(...), "
        "data_dir=...)).")
  builder = IclrEval(config=config_name, data_dir=data_dir)
  return read_eval_batch(builder)
