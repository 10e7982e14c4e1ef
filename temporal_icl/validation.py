"""Checks a config before anything is compiled: one clear sentence per problem.

`validate(config, num_devices)` raises `ConfigError` listing every problem found,
each naming the field, the offending value and what is allowed, so that a typo
in a sweep never surfaces as a traceback from inside JAX.
"""

from typing import List

import ml_collections

from temporal_icl import data
from temporal_icl import step_specs

SCHEDULES = ("stationary", "mala", "dirichlet", "equispaced")
HEADS = ("point", "gaussian", "mog")
RESAMPLING_SCHEDULES = ("dirichlet", "equispaced")


class ConfigError(ValueError):
  """A config value is invalid; `problems` holds one sentence per problem."""

  def __init__(self, problems: List[str]):
    self.problems = list(problems)
    super().__init__("Invalid config:\n" + "\n".join(f"  - {p}" for p in problems))


def _positive(config, problems, *fields):
  for field in fields:
    value = _get(config, field)
    if value is None or value <= 0:
      problems.append(f"config.{field}={value!r} must be a positive number.")


def _get(config, dotted):
  node = config
  for part in dotted.split("."):
    node = node[part]
  return node


def find_problems(config: ml_collections.ConfigDict, num_devices: int = 1) -> List[str]:
  """Returns one sentence per invalid value of `config` (empty if valid)."""
  p: List[str] = []
  c = config

  if c.M < 1 and not data.is_infinite(c.M):
    p.append(f"config.M={c.M} must be a task count >= 1, or {data.INFINITE_M} for "
             "M = ∞ (a fresh N(0, I_D) task per sequence).")
  _positive(c, p, "D", "K", "batch_size", "num_steps", "eval_every", "eval_batch_size",
            "checkpoint_every", "noise_var", "learning_rate", "model.num_blocks",
            "model.num_heads", "model.embed_size", "model.mlp_size")

  warmup = 0.1 if c.lr_warmup else 0.0
  if not 0.0 <= c.lr_decay_fraction <= 1.0 - warmup:
    p.append(f"config.lr_decay_fraction={c.lr_decay_fraction} must lie in "
             f"[0, {1.0 - warmup:g}]: the decay follows the warm-up "
             f"({warmup:.0%} of the steps).")

  both_set = c.gamma > 0 and c.R > 0
  if c.gamma < 0:
    p.append(f"config.gamma={c.gamma} must be >= 0 (the MALA step size).")
  if c.R < 0:
    p.append(f"config.R={c.R} must be >= 0 (resampling segments per task).")
  if both_set:
    p.append(f"config.gamma={c.gamma} and config.R={c.R} are both set: choose one kind "
             "of non-stationarity (MALA drift or resampling), not both.")

  if c.schedule not in SCHEDULES:
    p.append(f"config.schedule={c.schedule!r} is not a schedule; valid: "
             f"{', '.join(SCHEDULES)}.")
  else:
    if c.gamma > 0 and c.schedule != "mala" and not both_set:
      p.append(f"config.gamma={c.gamma} only acts with schedule='mala', but "
               f"config.schedule={c.schedule!r}; set --config.schedule=mala or use "
               "configs/mala.py.")
    if c.R > 0 and c.schedule not in RESAMPLING_SCHEDULES and not both_set:
      p.append(f"config.R={c.R} only acts with schedule 'dirichlet' or 'equispaced', "
               f"but config.schedule={c.schedule!r}; use configs/resample.py.")
    if c.schedule in RESAMPLING_SCHEDULES and c.R == 0:
      p.append(f"config.R={c.R}: schedule={c.schedule!r} needs R >= 1 segments per "
               "task (R = 1 is stationary; use schedule='stationary' for no resampling).")
    if data.is_infinite(c.M) and c.schedule != "stationary":
      p.append(f"config.schedule={c.schedule!r} moves a finite task set, but "
               f"config.M={c.M} means M = ∞; use schedule='stationary' with M = ∞.")

  if c.head not in HEADS:
    p.append(f"config.head={c.head!r} is not a head; valid: {', '.join(HEADS)}.")
  if c.head == "mog" and c.num_components < 1:
    p.append(f"config.num_components={c.num_components} must be >= 1 for head='mog'.")

  if c.energy_distance_every < 0:
    p.append(f"config.energy_distance_every={c.energy_distance_every} must be >= 0 "
             "(0 turns energy distance off).")
  if c.energy_distance_every > 0:
    if c.head == "point":
      p.append(f"config.energy_distance_every={c.energy_distance_every} needs a "
               "probabilistic head to sample from, but config.head='point'; set "
               "--config.head=gaussian or mog.")
    if c.energy_num_samples < 2:
      p.append(f"config.energy_num_samples={c.energy_num_samples} must be >= 2.")

  if c.K > 0 and not 1 <= c.delta_prompt_length <= c.K:
    p.append(f"config.delta_prompt_length={c.delta_prompt_length} must lie in "
             f"[1, K={c.K}].")
  if c.K > 0 and c.delta_tail_start is not None and not 0 <= c.delta_tail_start <= c.K - 1:
    p.append(f"config.delta_tail_start={c.delta_tail_start} must lie in "
             f"[0, K-1={c.K - 1}] (or be None to turn the tail metrics off).")

  if c.snapshot_period < 0:
    p.append(f"config.snapshot_period={c.snapshot_period} must be >= 0 (0 turns "
             "prior-tracking snapshots off).")
  if c.snapshot_period > 0:
    if c.head == "point":
      p.append(f"config.snapshot_period={c.snapshot_period} samples the implicit prior, "
               "which needs a probabilistic head, but config.head='point'; set "
               "--config.head=gaussian or mog.")
    if c.num_pr_samples < 1:
      p.append(f"config.num_pr_samples={c.num_pr_samples} must be >= 1.")
    if c.K > 0 and not 1 <= c.pr_generation_steps <= c.K:
      p.append(f"config.pr_generation_steps={c.pr_generation_steps} must lie in "
               f"[1, K={c.K}] (rollouts cannot exceed the model's context).")
    if c.dense_snapshot_period is not None and c.dense_snapshot_period <= 0:
      p.append(f"config.dense_snapshot_period={c.dense_snapshot_period} must be "
               "positive (or None for no dense snapshots).")
    window = (c.dense_step_start, c.dense_step_end)
    if (window[0] is None) != (window[1] is None):
      p.append(f"config.dense_step_start={window[0]} and config.dense_step_end="
               f"{window[1]} must be set together.")
    elif window[0] is not None and not 0 <= window[0] < window[1]:
      p.append(f"config.dense_step_start={window[0]} must satisfy 0 <= start < "
               f"config.dense_step_end={window[1]}.")
    if window[0] is not None and c.dense_snapshot_period is None:
      p.append("config.dense_step_start/end need config.dense_snapshot_period to take "
               "dense snapshots.")

  T = max(c.num_steps, 0)
  p += step_specs.problems("trajectory_steps", c.trajectory_steps, T)
  p += step_specs.problems("llc_steps", c.llc_steps, T)
  if c.llc_every < 0:
    p.append(f"config.llc_every={c.llc_every} must be >= 0 (0 turns it off).")
  if c.llc_every > 0 or c.llc_steps:
    l = c.llc
    for field in ("epsilon", "gamma"):
      if not l[field] > 0:
        p.append(f"config.llc.{field}={l[field]} must be positive.")
    if l.nbeta is not None and not l.nbeta > 0:
      p.append(f"config.llc.nbeta={l.nbeta} must be positive (or None for m / log m).")
    for field in ("num_chains", "num_draws", "batch_size", "dataset_size"):
      if l[field] < 1:
        p.append(f"config.llc.{field}={l[field]} must be >= 1.")
    if not 0 <= l.num_burnin < l.num_draws:
      p.append(f"config.llc.num_burnin={l.num_burnin} must lie in "
               f"[0, num_draws={l.num_draws}).")
    if l.batch_size < 2 or l.batch_size > l.dataset_size:
      p.append(f"config.llc.batch_size={l.batch_size} must lie in "
               f"[2, dataset_size={l.dataset_size}].")
  if c.eval_dataset and not c.eval_dataset.startswith("iclr_eval/"):
    p.append(f"config.eval_dataset={c.eval_dataset!r} must name a TFDS set of "
             "temporal_icl.datasets, e.g. 'iclr_eval/d8_k16' (or be '').")

  heads, width = c.model.num_heads, c.model.embed_size
  if heads > 0 and width > 0 and width % heads:
    p.append(f"config.model.num_heads={heads} must divide "
             f"config.model.embed_size={width}.")
  if c.batch_size > 0 and c.batch_size % num_devices:
    p.append(f"config.batch_size={c.batch_size} must be divisible by the number of "
             f"devices ({num_devices}) for data-parallel training.")
  return p


def validate(config: ml_collections.ConfigDict, num_devices: int = 1) -> None:
  """Raises ConfigError listing every problem of `config`, if any."""
  problems = find_problems(config, num_devices)
  if problems:
    raise ConfigError(problems)
