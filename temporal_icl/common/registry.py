"""Modules found by name: the one lookup behind schedules, heads and measurements.

A plain name ('mala') is a module of the given package; a dotted name
('my_lab.my_schedule') is imported as is, so extensions live outside the package.
"""

import importlib
import pkgutil
import types
from typing import Any, List, Optional


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


def part(module: types.ModuleType, name: str, default: Any = None) -> Any:
  """The module's part `name` (a function or constant of its contract), or `default`
  where the module leaves an optional part out.

  The one place where a plug-in module (schedule, head, measurement, sweep config)
  is looked into: each contract names its parts and their defaults and asks here.
  """
  return vars(module).get(name, default)
