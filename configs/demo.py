"""Laptop-sized demo: a small transformer on M = 8 drifting tasks, a few minutes on a CPU.

  python -m temporal_icl.main --config=configs/demo.py --workdir=runs/demo

Then look at it with:  tensorboard --logdir=runs/demo
"""

from configs import base


def get_config():
  config = base.get_config()
  config.schedule = "mala"
  config.gamma = 1e-2
  config.M = 8
  config.D = 4
  config.K = 16
  config.model.num_blocks = 2
  config.model.num_heads = 2
  config.model.embed_size = 64
  config.model.mlp_size = 64
  config.batch_size = 64
  config.num_steps = 4096
  config.eval_steps = "every:64"
  config.eval_batch_size = 512
  config.checkpoint_steps = "every:1024"
  return config
