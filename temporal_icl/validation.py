"""Checks a config before anything is compiled: one clear sentence per problem.

`validate(config, num_devices)` raises `ConfigError` listing every problem found,
each naming the field, the offending value and what is allowed, so that a typo
in a sweep never surfaces as a traceback from inside JAX.
"""

from typing import List

import ml_collections

from temporal_icl import data
from temporal_icl import heads as heads_lib
from temporal_icl import measurements
from temporal_icl import schedules
from temporal_icl import step_specs



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


def _schedule_problems(c) -> List[str]:
  """The schedule's own checks, plus parameters of other schedules that would not act."""
  try:
    schedule = schedules.get(c.schedule)
  except ValueError as e:
    return [str(e)]
  found = list(schedule.problems(c))
  idle = {}  # field -> the schedules it acts with
  for name in schedules.names():
    for field in schedules.get(name).PARAMETERS:
      if field not in schedule.PARAMETERS:
        idle.setdefault(field, []).append(name)
  for field, owners in idle.items():
    if c.get(field):
      found.append(
          f"config.{field}={c[field]} only acts with schedule "
          f"{' or '.join(repr(o) for o in owners)}, but config.schedule={c.schedule!r}; "
          f"choose one kind of non-stationarity (e.g. configs/mala.py or "
          f"configs/resample.py).")
  return found


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

  p += _schedule_problems(c)

  if c.head not in heads_lib.NAMES:
    p.append(f"config.head={c.head!r} is not a head; valid: {', '.join(heads_lib.NAMES)}.")
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
  p += measurements.problems(c)
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
