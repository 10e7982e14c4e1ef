"""Named, independent random streams of a run, all derived from config.seed.

Training draws only from 'params', 'tasks', 'data' and 'schedule_steps';
measurements draw from their own streams, so switching a measurement on or off
never changes the training trajectory.

A measurement outside this package (a dotted module name in config.measurements)
gets a stream of its own too, named by its module: `run.keys[__name__]` in its
compute (experiment.run_data adds it).  Its number is derived from the name
(`number`), so it never changes and never meets the numbers below.
"""

import zlib

import jax

# Numbers are fixed forever (5, once 'eval', is retired): changing one would
# change every run made with that stream.
STREAMS = dict(params=0, tasks=1, data=2, schedule_steps=3, test_set=4, energy=6,
               snapshots=7, llc=8)


_OUTSIDE = 2**31  # outside streams are numbered from here: 2**31 + crc32(name) mod 2**31


def number(name: str) -> int:
  """The number of stream `name`: fixed above, or derived from an outside module's name."""
  if name in STREAMS:
    return STREAMS[name]
  if "." not in name:
    raise KeyError(f"{name!r} is neither a stream of {sorted(STREAMS)} nor a dotted "
                   "module name.")
  return _OUTSIDE + zlib.crc32(name.encode()) % _OUTSIDE


def names(measurements=()) -> list:
  """The streams of a run whose config.measurements is `measurements`."""
  return list(STREAMS) + [m for m in measurements if "." in m]


def key(seed: int, name: str) -> jax.Array:
  """The PRNG key of stream `name` of the run with `seed`."""
  return jax.random.fold_in(jax.random.PRNGKey(seed), number(name))

