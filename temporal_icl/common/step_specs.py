"""Which steps an occasional measurement or save runs at: the one step-spec idiom.

Every periodic thing of a run (evaluation, measurements, snapshots, checkpoints,
trajectory states) is scheduled by a step spec, parsed here and nowhere else.
A step spec is one of
  ''  or 0        never;
  N (an int > 0)  the same as 'every:N';
  'every:N'       0, N, 2N, … and the last step;
  'log:N'         N steps log-spaced from 1 to the last step (rounded, distinct),
                  plus step 0 — the early steps, where development is fastest,
                  get most of them;
  '10,100,5000'   exactly these steps (those beyond the last step are ignored);
  'A+B'           the union of the specs A and B, e.g. 'every:4096+log:16'.

The last-step rule, stated once: 'every:N' and 'log:N' always include the last
step (so the final model is always measured); an explicit list includes only
the steps it names.  Steps beyond the last are dropped.

Checkpoints use the same specs without step 0 (`parse(..., include_zero=False)`):
the initial state is rebuilt from the seed, never saved.
"""

from typing import List, Union

import numpy as np

StepSpec = Union[str, int]


class StepSpecError(ValueError):
  pass


def every(n: int, num_steps: int) -> List[int]:
  """0, n, 2n, … and num_steps (n > 0)."""
  return sorted(set(range(0, num_steps + 1, n)) | {num_steps})


def parse(spec: StepSpec, num_steps: int, *, include_zero: bool = True) -> List[int]:
  """Sorted distinct steps in [0, num_steps] named by `spec` (StepSpecError if none)."""
  try:
    steps = _parse(spec, num_steps)
  except StepSpecError as e:
    raise StepSpecError(f"{spec!r}: {e}") from None
  return steps if include_zero else [s for s in steps if s != 0]


def _parse(spec: StepSpec, num_steps: int) -> List[int]:
  if isinstance(spec, str) and "+" in spec:
    return sorted(set().union(*(_parse(part, num_steps) for part in spec.split("+"))))
  if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
    if spec < 0:
      raise StepSpecError("a step count must be >= 0 (0 means never).")
    return every(int(spec), num_steps) if spec else []
  spec = (spec or "").strip()
  if not spec:
    return []
  kind, _, value = spec.partition(":")
  if kind in ("every", "log"):
    try:
      n = int(value)
    except ValueError:
      n = 0
    if n <= 0:
      raise StepSpecError(f"'{kind}:' needs a positive integer, e.g. '{kind}:16'.")
    if kind == "every":
      steps = set(every(n, num_steps))
    else:
      steps = {0} | {int(s) for s in np.unique(np.round(np.geomspace(1, max(num_steps, 1), n)))}
    return sorted(s for s in steps if 0 <= s <= num_steps)
  try:
    steps = {int(s) for s in spec.split(",") if s.strip()}
  except ValueError:
    raise StepSpecError("not a step spec: use '', 'every:N', 'log:N', "
                        "a comma-separated list of steps, or specs joined by '+'.") from None
  if any(s < 0 for s in steps):
    raise StepSpecError("steps must be >= 0.")
  return sorted(s for s in steps if s <= num_steps)


def problems(name: str, spec: StepSpec, num_steps: int) -> List[str]:
  """Config-validation sentences for field `name` (empty when fine)."""
  try:
    _parse(spec, num_steps)
  except StepSpecError as e:
    return [f"config.{name}={spec!r}: {e}"]
  return []
