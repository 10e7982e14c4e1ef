"""A child started in a session of its own keeps its launcher's niceness.

Under the kernel's autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled = 1,
the default of many Linux distributions), the CPU is shared fairly between sessions
first, and a process's niceness only orders it within its session. A sweep launched
under `nice` starts each training process in a session of its own (so that Ctrl-C
reaches the launcher only), and so each of them competed at full priority with the
work it was niced to give way to: on 2 cores beside the laptop phase sweep, the default
test suite took 1215 s against 440 s idle (2026-12-07). Handing the launcher's
niceness to the child's autogroup, as `nice` alone cannot, makes the sweep yield
again.
"""

import os
from typing import Optional

AUTOGROUPS = "/proc/sys/kernel/sched_autogroup_enabled"


def autogroups_on() -> bool:
  """Whether the kernel schedules sessions as autogroups."""
  try:
    with open(AUTOGROUPS) as f:
      return f.read().strip() == "1"
  except OSError:
    return False


def pass_on(pid: int, niceness: Optional[int] = None) -> bool:
  """Gives the autogroup of process `pid` the niceness `niceness` (default: this
  process's own). True once set; False where there is nothing to do (niceness 0,
  autogroups off or absent) or the kernel refuses (lowering a niceness needs
  privileges)."""
  niceness = os.nice(0) if niceness is None else niceness
  if niceness == 0 or not autogroups_on():
    return False
  try:
    with open(f"/proc/{pid}/autogroup", "w") as f:
      f.write(str(niceness))
  except OSError:
    return False
  return True
