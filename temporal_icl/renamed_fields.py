"""Config fields renamed in 0.2; the old names keep working until 0.3, with a warning.

Every periodic thing is now scheduled by a step spec (temporal_icl.step_specs)
in a field ending in `_steps`, and the LLC's fields follow devinterp's names:

  eval_every=N             -> eval_steps='every:N'
  energy_distance_every=N  -> energy_distance_steps='every:N'     (0 -> '')
  snapshot_period=N        -> snapshot_steps='every:N'            (0 -> '')
  checkpoint_every=N       -> checkpoint_steps='every:N'
  llc_every=N              -> llc_steps='every:N', joined to llc_steps with '+'
  llc.gamma=g              -> llc.localization=g   (not the MALA step size γ)
  llc.num_burnin=b         -> llc.num_burnin_steps=b and llc.num_draws reduced by b
                              (the old burn-in was counted within num_draws; the
                              same SGLD steps are run and averaged)

configs/base.py declares the old names as unset placeholders (`declare`) so that
`--config.eval_every=128` still parses; `upgrade` moves a value given under an
old name to its new field and removes the old names, so nothing downstream
(validation, config.json, measurements) ever sees them.
"""

from typing import List

import ml_collections

REMOVED_IN = "0.3"

# Old top-level field -> its step-spec field.
EVERY_N = {
    "eval_every": "eval_steps",
    "energy_distance_every": "energy_distance_steps",
    "snapshot_period": "snapshot_steps",
    "checkpoint_every": "checkpoint_steps",
}
# Every old name and the type of its value.
OLD_NAMES = {**{old: int for old in EVERY_N}, "llc_every": int, "llc.gamma": float,
             "llc.num_burnin": int}


def _spec(n) -> str:
  return f"every:{n}" if n else ""


def _remove(config: ml_collections.ConfigDict, field: str) -> None:
  if field in config:
    del config[field]


def declare(config: ml_collections.ConfigDict) -> None:
  """Adds every old name to `config` as an unset placeholder of its type."""
  for name, kind in OLD_NAMES.items():
    parent, _, field = name.rpartition(".")
    (config[parent] if parent else config)[field] = (
        ml_collections.config_dict.placeholder(kind))


def given(config: ml_collections.ConfigDict) -> List[str]:
  """The old names that hold a value in `config` (not yet upgraded)."""
  found = []
  for name in OLD_NAMES:
    parent, _, field = name.rpartition(".")
    node = config.get(parent) if parent else config
    if node is not None and node.get(field) is not None:
      found.append(name)
  return found


def upgrade(config: ml_collections.ConfigDict) -> List[str]:
  """Moves values of renamed fields to their new names, in place.

  Returns one deprecation sentence per old name that was given a value; old
  names left unset are removed silently.  Idempotent.
  """
  messages = []

  def moved(old: str, new: str, value) -> None:
    messages.append(f"config.{old} is deprecated (removed in {REMOVED_IN}); this run "
                    f"uses config.{new}={value!r} instead.")

  with config.unlocked():
    for old, new in EVERY_N.items():
      value = config.get(old)
      if value is not None:
        config[new] = _spec(value)
        moved(old, new, config[new])
      _remove(config, old)

    every = config.get("llc_every")
    if every is not None:
      steps = "+".join(s for s in (config.get("llc_steps", ""), _spec(every)) if s)
      config.llc_steps = steps
      moved("llc_every", "llc_steps", steps)
    _remove(config, "llc_every")

    llc = config.get("llc")
    if llc is not None:
      gamma = llc.get("gamma")
      if gamma is not None:
        llc.localization = gamma
        moved("llc.gamma", "llc.localization", gamma)
      burnin = llc.get("num_burnin")
      if burnin is not None:
        llc.num_burnin_steps = burnin
        llc.num_draws = llc.num_draws - burnin
        messages.append(
            f"config.llc.num_burnin is deprecated (removed in {REMOVED_IN}): burn-in "
            f"steps now come before the draws, as in devinterp; this run uses "
            f"config.llc.num_burnin_steps={burnin} and config.llc.num_draws="
            f"{llc.num_draws}, the same SGLD steps.")
      _remove(llc, "gamma")
      _remove(llc, "num_burnin")
  return messages


def upgraded(config_json: dict) -> dict:
  """A run's recorded config (config.json, as a dict) in today's field names."""
  config = ml_collections.ConfigDict(config_json)
  upgrade(config)
  return config.to_dict()
