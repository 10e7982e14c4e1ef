"""Named, independent random streams of a run, all derived from config.seed.

Training draws only from 'params', 'tasks', 'data' and 'schedule_steps';
measurements draw from their own streams, so switching a measurement on or off
never changes the training trajectory.
"""

import jax

# Numbers are fixed forever (5, once 'eval', is retired): changing one would
# change every run made with that stream.
STREAMS = dict(params=0, tasks=1, data=2, schedule_steps=3, test_set=4, energy=6,
               snapshots=7, llc=8)


def key(seed: int, name: str) -> jax.Array:
  """The PRNG key of stream `name` of the run with `seed`."""
  return jax.random.fold_in(jax.random.PRNGKey(seed), STREAMS[name])

