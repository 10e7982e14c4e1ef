"""Sweeps: lists of config overrides, their run names and command lines.

A config module may define `get_sweep()` returning a list of override dicts,
e.g. `[{'M': 8, 'gamma': 1e-2, 'seed': 0}, ...]`, usually built with `product`
and `zip_`.  Each sweep point becomes one run of `temporal_icl.main`:

  python -m temporal_icl.main --config=configs/mala.py --config.M=8 \
      --config.gamma=0.01 --config.seed=0 --workdir=<root>/M8-gamma0.01-seed0

Launchers: launch/local_launch.py (subprocesses on this machine) and
launch/xm_launch.py (XManager).
"""

import importlib.util
import itertools
import os
from typing import Any, Dict, List, Optional, Sequence

Overrides = Dict[str, Any]


def product(**axes: Sequence[Any]) -> List[Overrides]:
  """Every combination: product(M=[1, 2], seed=[0, 1]) -> 4 dicts."""
  names = list(axes)
  return [dict(zip(names, values)) for values in itertools.product(*axes.values())]


def zip_(**axes: Sequence[Any]) -> List[Overrides]:
  """Pointwise: zip_(M=[8, 64], gamma=[0, 0]) -> 2 dicts (lengths must agree)."""
  lengths = {len(v) for v in axes.values()}
  if len(lengths) > 1:
    raise ValueError(f"zip_ needs axes of equal length; got "
                     f"{ {k: len(v) for k, v in axes.items()} }.")
  return [dict(zip(axes, values)) for values in zip(*axes.values())]


def chain(*sweeps: Sequence[Overrides]) -> List[Overrides]:
  """The points of several sweeps, one after another."""
  return [dict(point) for sweep in sweeps for point in sweep]


def _format(value: Any) -> str:
  """Short and exact: floats as %g (0, 0.01, 1e-05) unless that rounds them, then
  as their shortest round-trip repr (0.1234567)."""
  if isinstance(value, float):
    short = f"{value:g}"
    return short if float(short) == value else repr(value)
  return str(value)


def run_name(overrides: Overrides) -> str:
  """A readable, stable, unique name: keys sorted, 'M8-gamma0.01-seed0'."""
  if not overrides:
    return "default"
  parts = [f"{key}{_format(value)}" for key, value in sorted(overrides.items())]
  return "-".join(p.replace("/", "_").replace(" ", "") for p in parts)


def config_flags(overrides: Overrides) -> List[str]:
  """['--config.M=8', '--config.gamma=0.01', ...] in the sweep's key order."""
  return [f"--config.{key}={_format(value)}" for key, value in overrides.items()]


def load_sweep(config_path: str) -> List[Overrides]:
  """The `get_sweep()` of a config file (its part before any ':' argument)."""
  path = config_path.split(":")[0]
  spec = importlib.util.spec_from_file_location("_sweep_config", path)
  if spec is None or not os.path.exists(path):
    raise ValueError(f"No config file at {path!r}.")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_sweep"):
    raise ValueError(f"{path} defines no get_sweep(); sweepable configs: "
                     "configs/mala.py, configs/resample.py, configs/replication.py, "
                     "configs/laptop_replication.py.")
  sweep = list(module.get_sweep())
  names = [run_name(o) for o in sweep]
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise ValueError(f"{path}: get_sweep() repeats the runs {duplicates}.")
  return sweep


def commands(config_path: str, workdir_root: str, python: str = "python",
             config_arg: Optional[str] = None) -> List[Dict[str, Any]]:
  """One dict per sweep point: name, workdir, args (without the interpreter).

  The sweep is read from `config_path`; the jobs get `--config=<config_arg>` (default
  `config_path`), for jobs that see the file at another path, as in a container.
  """
  jobs = []
  for overrides in load_sweep(config_path):
    workdir = os.path.join(workdir_root, run_name(overrides))
    args = ["-m", "temporal_icl.main", f"--config={config_arg or config_path}",
            *config_flags(overrides), f"--workdir={workdir}"]
    jobs.append({"name": run_name(overrides), "workdir": workdir,
                 "overrides": overrides, "args": args, "python": python})
  return jobs
