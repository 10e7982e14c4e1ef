"""A config small enough to train end to end in seconds, for the tests.

  python -m temporal_icl.main --config=temporal_icl/tests/tiny_config.py --workdir=/tmp/t
"""

from configs import base
from temporal_icl.launching import sweeps


def get_config():
  config = base.get_config()
  config.schedule = "mala"
  config.gamma = 0.05
  config.M = 4
  config.D = 2
  config.K = 4
  config.delta_prompt_length = 4
  config.model.num_blocks = 1
  config.model.num_heads = 2
  config.model.embed_size = 16
  config.model.mlp_size = 16
  config.batch_size = 8
  config.num_steps = 48
  config.eval_steps = "every:8"
  config.eval_batch_size = 16
  config.checkpoint_steps = "every:16"
  config.energy_num_samples = 64
  return config


def get_sweep():
  """Two runs for the launcher tests: stationary, and drifting at the config's own γ
  (so that the second is the run of the plain tiny config)."""
  return sweeps.product(gamma=[0.0, 0.05], seed=[42])
