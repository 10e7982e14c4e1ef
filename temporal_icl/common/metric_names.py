"""Every metric name a run writes, in one place.

The measurements build their outputs from these names, the TensorBoard layout its
charts, and export, phase and plots read them back.  The names are those of the
reference implementation (so analysis code written for it reads our exports) and
must never change: a renamed metric is a new metric.

Evaluation metrics carry a split prefix, `on(split, kind)`: 'train' for a batch of
the current training task set, 'test' for a held-out batch.
"""

from typing import Tuple

# What the training step reports (train.step_metrics).
TRAIN_LOSS = "train_loss"  # mean of the steps since the previous measurement
LR = "lr"  # the learning rate at the step reached
MALA_ACCEPTANCE_RATE = "mala/acceptance_rate"  # schedules.mala.metrics

# Evaluation (temporal_icl.evaluation): kinds, each written per split.
SPLITS = ("train", "test")
MODEL, RIDGE, DMMSE = "model", "ridge", "dmmse"  # who predicts
ERROR, DELTA, DELTA_TAIL = "error", "delta", "delta_tail"
NLL_MODEL = "nll_model"


def error(who: str) -> str:
  """error_model, error_ridge, error_dmmse: mean squared error of `who`'s predictions."""
  return f"{ERROR}_{who}"


def delta(who: str) -> str:
  """delta_ridge, delta_dmmse: Δ_PT of the model to a baseline, on the prompt."""
  return f"{DELTA}_{who}"


def delta_tail(who: str) -> str:
  """delta_tail_ridge, delta_tail_dmmse: Δ_PT on the tail of the sequence."""
  return f"{DELTA_TAIL}_{who}"


def on(split: str, kind: str) -> str:
  """The written name of metric `kind` on `split`, e.g. on('test', delta(RIDGE))."""
  return f"{split}_{kind}"


# Energy distance of the implicit prior to a Bayes prior, and its sample histograms.
ENERGY_DIST = "energy_dist/prior"


def energy_dist(who: str) -> str:
  """energy_dist/prior/ridge or energy_dist/prior/dmmse."""
  return f"{ENERGY_DIST}/{who}"


def prior_histogram(dim: int) -> str:
  """prior/dim_i: the histogram of coordinate i of the implicit prior's samples."""
  return f"prior/dim_{dim}"


# Local learning coefficient.
LLC_MEAN = "llc/mean"
LLC_STD = "llc/std"
LLC_LOSS_BELOW_INIT_FRACTION = "llc/loss_below_init_fraction"

# The metrics the reference's JSON carries (besides step, lr and timestamp).
SPEC_METRICS: Tuple[str, ...] = tuple(
    on(split, kind) for split in SPLITS
    for kind in (error(MODEL), error(RIDGE), error(DMMSE), delta(DMMSE), delta(RIDGE),
                 NLL_MODEL, delta_tail(DMMSE), delta_tail(RIDGE))
) + (energy_dist(DMMSE), energy_dist(RIDGE))
