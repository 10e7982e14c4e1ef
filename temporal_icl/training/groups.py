"""Run groups: several runs trained as one program, each exactly as it would be alone.

A group is runs whose configs are equal except in the fields of `MAY_DIFFER`
(seed, γ, R, learning rate, M): the same shapes, network, head, batch, steps,
step specs and schedule kind.  What differs is data — each run's `RunData`
(experiment.run_data) and its TrainState — stacked along a leading run axis of
size N and vmapped over by the training step and the measurements; one run is a
group of one.

Shapes that depend on a run's M or R (the task set [M, D], resampling segment
starts [M, R], per-task counters [M]) are padded to the group's largest, and every
consumer honours the run's M (RunData.num_tasks): sampling draws from the first M
tasks, dMMSE puts no weight on the rest.  Padded entries are filled with 0, or
with the schedule's `PAD_VALUES[field]` where 0 would act (a segment start that
is never reached).  A run's own, unpadded state is what is checkpointed, so a run
trained in a group resumes alone and the other way round.
"""

import functools
import json
from typing import Any, Dict, List, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from temporal_icl.common import workdir as workdir_lib
from temporal_icl.core import data

# The config fields in which the runs of a group may differ.
MAY_DIFFER = ("seed", "gamma", "R", "learning_rate", "M")


def problems(configs: Sequence[ml_collections.ConfigDict], names: Sequence[str]) -> List[str]:
  """One sentence per field the runs `names` would have to share but do not."""
  flat = [workdir_lib._flatten(json.loads(workdir_lib.config_to_json(c))) for c in configs]
  found = []
  for field in sorted(set().union(*flat)):
    if field in MAY_DIFFER:
      continue
    values = [f.get(field, "<absent>") for f in flat]
    other = next((i for i, v in enumerate(values) if v != values[0]), None)
    if other is not None:
      found.append(f"the runs of a group must share config.{field}, but {names[0]} has "
                   f"{values[0]!r} and {names[other]} {values[other]!r}; train them in "
                   "separate groups.")
  infinite = [data.is_infinite(c.M) for c in configs]
  if any(infinite) and not all(infinite):
    finite, inf = infinite.index(False), infinite.index(True)
    found.append(f"M = ∞ ({names[inf]}) and a finite M ({names[finite]}) cannot share a "
                 "group (their task sets differ in kind); train them in separate groups.")
  return found


def compatibility_key(config: ml_collections.ConfigDict) -> str:
  """Equal for two configs exactly when they may share a group."""
  flat = workdir_lib._flatten(json.loads(workdir_lib.config_to_json(config)))
  shared = {k: v for k, v in flat.items() if k not in MAY_DIFFER}
  shared["M is infinite"] = data.is_infinite(config.M)
  return json.dumps(shared, sort_keys=True, default=str)


def _field(path) -> str:
  """The name of the NamedTuple field (or dict key) a leaf sits in, '' if none."""
  for entry in reversed(path):
    name = getattr(entry, "name", None) or getattr(entry, "key", None)
    if isinstance(name, str):
      return name
  return ""


def group_shapes(likes: Sequence[Any]) -> Any:
  """The elementwise largest shape of each leaf over the runs' abstract states."""
  def largest(*leaves):
    shape = tuple(max(dims) for dims in zip(*(l.shape for l in leaves)))
    return jax.ShapeDtypeStruct(shape, leaves[0].dtype)
  return jax.tree.map(largest, *likes)


def pad(tree: Any, like: Any, fills: Mapping[str, Any]) -> Any:
  """Each leaf of `tree` padded at the end of every axis up to `like`'s shape.

  fills: padding value per field name (default 0).
  """
  def one(path, leaf, target):
    widths = [(0, t - s) for s, t in zip(leaf.shape, target.shape)]
    if not any(w for _, w in widths):
      return leaf
    return jnp.pad(leaf, widths, constant_values=fills.get(_field(path), 0))
  return jax.tree_util.tree_map_with_path(one, tree, like)


def cut(tree: Any, like: Any) -> Any:
  """Each leaf of `tree` cut back to `like`'s shape (the inverse of `pad`)."""
  return jax.tree.map(lambda leaf, l: leaf[tuple(slice(0, n) for n in l.shape)], tree, like)


@jax.jit
def stack(trees: Sequence[Any]) -> Any:
  """Trees of equal structure and shapes -> one tree with a leading run axis.

  Jitted: one program for the whole tree instead of one eager program a leaf
  shape (a tree of 13 leaves cost 13 compilations at a run's start).
  """
  return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


@functools.partial(jax.jit, static_argnums=1)
def take(tree: Any, index: int) -> Any:
  """Run `index` of a stacked tree (jitted, as `stack`)."""
  return jax.tree.map(lambda leaf: leaf[index], tree)


def per_run(tree: Any) -> List[Dict[str, np.ndarray]]:
  """A stacked dict of arrays -> one dict of host arrays per run."""
  host = jax.device_get(tree)
  size = len(next(iter(host.values())))
  return [{k: v[i] for k, v in host.items()} for i in range(size)]
