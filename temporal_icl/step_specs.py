"""Which steps an occasional measurement or save runs at, from one config string.

A step spec is one of
  ''              never;
  'every:N'       0, N, 2N, … and the last step;
  'log:N'         N steps log-spaced from 1 to the last step (rounded, distinct),
                  plus step 0 — the early steps, where development is fastest,
                  get most of them;
  '10,100,5000'   exactly these steps (those beyond the last step are ignored).
"""

from typing import List

import numpy as np


class StepSpecError(ValueError):
  pass


def parse(spec: str, num_steps: int) -> List[int]:
  """Sorted distinct steps in [0, num_steps] named by `spec`."""
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
      raise StepSpecError(f"'{spec}': '{kind}:' needs a positive integer, e.g. '{kind}:16'.")
    if kind == "every":
      steps = set(range(0, num_steps + 1, n)) | {num_steps}
    else:
      steps = {0} | {int(s) for s in np.unique(np.round(np.geomspace(1, max(num_steps, 1), n)))}
    return sorted(s for s in steps if 0 <= s <= num_steps)
  try:
    steps = {int(s) for s in spec.split(",") if s.strip()}
  except ValueError:
    raise StepSpecError(f"'{spec}' is not a step spec: use '', 'every:N', 'log:N' or "
                        "a comma-separated list of steps.") from None
  if any(s < 0 for s in steps):
    raise StepSpecError(f"'{spec}': steps must be >= 0.")
  return sorted(s for s in steps if s <= num_steps)


def problems(name: str, spec: str, num_steps: int) -> List[str]:
  """Config-validation sentences for field `name` (empty when fine)."""
  try:
    parse(spec, num_steps)
  except StepSpecError as e:
    return [f"config.{name}={spec!r}: {e}"]
  return []
