"""Sweeps: lists of config overrides, their run names and command lines.

A config module may define `get_sweep()` returning a list of override dicts,
e.g. `[{'M': 8, 'gamma': 1e-2, 'seed': 0}, ...]`, usually built with `product`
and `zip_`.  Each sweep point becomes one run of `temporal_icl.main`:

  python -m temporal_icl.main --config=configs/mala.py --config.M=8 \
      --config.gamma=0.01 --config.seed=0 --workdir=<root>/M8-gamma0.01-seed0

A run group trains several sweep points as one program (temporal_icl.training.groups);
each still gets the workdir and the config its own command would give it:

  python -m temporal_icl.main --config=configs/mala.py --workdir=<root> \
      --group=M8-gamma0.01-seed0 --group=M16-gamma0.01-seed0

Launchers: launch/local_launch.py (subprocesses on this machine) and
launch/xm_launch.py (XManager).
"""

import importlib.util
import itertools
import os
from typing import Any, Callable, Dict, List, Optional, Sequence

from temporal_icl.common import registry

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


def apply(config, overrides: Overrides):
  """A copy of `config` with `overrides` set as `--config.KEY=VALUE` would set them
  (each value read as its field's type, so 0 in a float field is 0.0)."""
  config = config.copy_and_resolve_references()
  for key, value in overrides.items():
    *parents, field = key.split(".")
    node = config
    for parent in parents:
      node = node[parent]
    current = node[field]
    if isinstance(current, (int, float, str)) and not isinstance(current, bool):
      node[field] = type(current)(_format(value))
    else:
      node[field] = value
  return config


def select(config_path: str, names: Sequence[str]) -> List[Overrides]:
  """The sweep points of `config_path` called `names` (['all']: every point), in
  the sweep's order.

  Raises:
    ValueError: a name that is not a point of the sweep (one sentence).
  """
  sweep = load_sweep(config_path)
  if list(names) == ["all"]:
    return sweep
  by_name = {run_name(o): o for o in sweep}
  unknown = [n for n in names if n not in by_name]
  if unknown:
    shown = ", ".join(list(by_name)[:6]) + (", …" if len(by_name) > 6 else "")
    raise ValueError(f"--group names {', '.join(unknown)}, not a run of the sweep of "
                     f"{config_path} (its runs: {shown}; or --group=all).")
  wanted = set(names)
  return [o for o in sweep if run_name(o) in wanted]


def refuse_overrides_of_swept_keys(points: Sequence[Overrides], argv: Sequence[str]):
  """Raises ValueError (one sentence) when a command line `argv` sets with
  --config.<key> a key that the sweep `points` set for each run."""
  given = {a.split("=")[0][len("--config."):] for a in argv if a.startswith("--config.")}
  clash = sorted({key for point in points for key in point} & given)
  if clash:
    raise ValueError(f"--config.{clash[0]} is set on the command line, but the group's "
                     "sweep sets it for each run; leave it out (or train the runs one by "
                     "one).")


def config_flags(overrides: Overrides) -> List[str]:
  """['--config.M=8', '--config.gamma=0.01', ...] in the sweep's key order."""
  return [f"--config.{key}={_format(value)}" for key, value in overrides.items()]


def _config_module(config_path: str):
  path = config_path.split(":")[0]
  spec = importlib.util.spec_from_file_location("_sweep_config", path)
  if spec is None or not os.path.exists(path):
    raise ValueError(f"No config file at {path!r}.")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_config(config_path: str):
  """The config of `config_path` ('file.py' or 'file.py:arg'), as --config reads it."""
  module = _config_module(config_path)
  _, colon, arg = config_path.partition(":")
  return module.get_config(arg) if colon else module.get_config()


def load_sweep(config_path: str) -> List[Overrides]:
  """The `get_sweep()` of a config file (its part before any ':' argument)."""
  path = config_path.split(":")[0]
  module = _config_module(config_path)
  if registry.part(module, "get_sweep") is None:
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
             config_arg: Optional[str] = None, runs_per_process: int = 1,
             skip: Callable[[str], bool] = lambda workdir: False) -> List[Dict[str, Any]]:
  """One dict per process: name, runs (name, workdir, overrides each), workdir (of
  its first run), args (without the interpreter).

  The sweep is read from `config_path`; the jobs get `--config=<config_arg>` (default
  `config_path`), for jobs that see the file at another path, as in a container.
  runs_per_process = 1 gives one solo command per sweep point; N > 1 trains up to N
  points per process as a run group (`--group=`), taking the points in sweep order
  and grouping only those that may share a group (groups.compatibility_key).
  Points whose workdir `skip` accepts (e.g. finished runs) are left out after the
  groups are formed, so a run's group is the same in every session of a sweep (a
  group's float rounding can depend on its size and members' M).
  """
  runs = []
  for overrides in load_sweep(config_path):
    workdir = os.path.join(workdir_root, run_name(overrides))
    runs.append({"name": run_name(overrides), "workdir": workdir, "overrides": overrides})
  config = config_arg or config_path
  if runs_per_process == 1:
    return [dict(run, runs=[run], python=python,
                 args=["-m", "temporal_icl.main", f"--config={config}",
                       *config_flags(run["overrides"]), f"--workdir={run['workdir']}"])
            for run in runs if not skip(run["workdir"])]
  from temporal_icl.training import groups  # pylint: disable=g-import-not-at-top
  base = load_config(config_path)
  batches: Dict[str, List[List[Dict[str, Any]]]] = {}
  order = []
  for run in runs:
    key = groups.compatibility_key(apply(base, run["overrides"]))
    if key not in batches or len(batches[key][-1]) == runs_per_process:
      batches.setdefault(key, []).append([])
      order.append((key, len(batches[key]) - 1))
    batches[key][-1].append(run)
  jobs = []
  for key, index in order:
    members = [m for m in batches[key][index] if not skip(m["workdir"])]
    if not members:
      continue
    name = members[0]["name"] + (f"+{len(members) - 1}" if len(members) > 1 else "")
    args = ["-m", "temporal_icl.main", f"--config={config}", f"--workdir={workdir_root}",
            *(f"--group={m['name']}" for m in members)]  # no commas: Vertex strips them
    jobs.append({"name": name, "runs": members, "workdir": members[0]["workdir"],
                 "args": args, "python": python})
  return jobs
