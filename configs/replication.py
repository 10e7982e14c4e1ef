"""The minimal replication of the paper, at paper size (four runs).

M = 8 memorises (dMMSE) when stationary, M = 64 generalises (ridge); M = 8 with a
small MALA drift (γ = 1e-3) still memorises, with a large one (γ = 1e-2) it
generalises.  About 45 minutes per run on a TPU; days on a CPU.

  python launch/local_launch.py --config=configs/replication.py --workdir_root=runs/replication
"""

from configs import base
from temporal_icl.launching import sweeps


def get_config():
  config = base.get_config()
  config.schedule = "mala"  # γ = 0 leaves every task in place: stationary
  return config


def get_sweep():
  return sweeps.zip_(M=[8, 64, 8, 8], gamma=[0.0, 0.0, 1e-3, 1e-2])
