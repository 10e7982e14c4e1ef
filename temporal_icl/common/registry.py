"""Modules found by name: the one lookup behind schedules, heads and measurements.

A plain name ('mala') is a module of the given package; a dotted name
('my_lab.my_schedule') is imported as is, so extensions live outside the package.
"""

import importlib
import pkgutil
import types
from typing import List, Optional


def public_modules(package: types.ModuleType) -> List[str]:
  """The names of `package`'s modules that do not start with '_', sorted; its
  subpackages (e.g. measurements.methods, the algorithms) are not among them."""
  return sorted(m.name for m in pkgutil.iter_modules(package.__path__)
                if not m.name.startswith("_") and not m.ispkg)


def find(package: types.ModuleType, name: str) -> Optional[types.ModuleType]:
  """The module `name` means (see above), or None if it cannot be imported."""
  try:
    return importlib.import_module(name if "." in name else f"{package.__name__}.{name}")
  except ImportError:
    return None
