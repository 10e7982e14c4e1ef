"""Checks a config before anything is compiled: one clear sentence per problem.

`validate(config, num_devices)` raises `ConfigError` listing every problem found,
each naming the field, the offending value and what is allowed, so that a typo
in a sweep never surfaces as a traceback from inside JAX.
"""

from typing import List

import ml_collections

from temporal_icl.common import errors
from temporal_icl.common import step_specs
from temporal_icl.core import data
from temporal_icl.core import heads as heads_lib
from temporal_icl.core import schedules
from temporal_icl import measurements


ConfigError = errors.ConfigError  # defined in a leaf module, which every layer may raise


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
  _positive(c, p, "D", "K", "batch_size", "num_steps", "noise_var", "learning_rate",
            "model.num_blocks", "model.num_heads", "model.embed_size", "model.mlp_size")

  warmup = 0.1 if c.lr_warmup else 0.0
  if not 0.0 <= c.lr_decay_fraction <= 1.0 - warmup:
    p.append(f"config.lr_decay_fraction={c.lr_decay_fraction} must lie in "
             f"[0, {1.0 - warmup:g}]: the decay follows the warm-up "
             f"({warmup:.0%} of the steps).")

  p += _schedule_problems(c)
  p += heads_lib.problems(c)

  # Shared by the evaluation and the snapshots' Δ_PT.
  if c.K > 0 and not 1 <= c.delta_prompt_length <= c.K:
    p.append(f"config.delta_prompt_length={c.delta_prompt_length} must lie in "
             f"[1, K={c.K}].")
  if c.K > 0 and c.delta_tail_start is not None and not 0 <= c.delta_tail_start <= c.K - 1:
    p.append(f"config.delta_tail_start={c.delta_tail_start} must lie in "
             f"[0, K-1={c.K - 1}] (or be None to turn the tail metrics off).")

  T = max(c.num_steps, 0)
  p += step_specs.problems("checkpoint_steps", c.checkpoint_steps, T)
  p += measurements.problems(c)  # each measurement checks its own fields

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
