"""configs/laptop_replication.py at the paper's constant learning rate (no final decay).

The same four cases at the same length, seeds 0 and 1: the comparison that shows
what the decay of the main sweep does (README "Reproducing the main result").

  python launch/local_launch.py --config=configs/laptop_constant_lr.py \
      --workdir_root=runs/laptop_constant_lr --parallel=2
"""

from configs import laptop_replication
from temporal_icl.launching import sweeps


def get_config():
  config = laptop_replication.get_config()
  config.lr_decay_fraction = 0.0  # the paper: constant after the 10% warm-up
  return config


def get_sweep():
  stationary = sweeps.product(M=[8, 256], gamma=[0.0], seed=[0, 1])
  drifting = sweeps.product(M=[8], gamma=[1e-5, 3e-2], seed=[0, 1])
  return sweeps.chain(stationary, drifting)
