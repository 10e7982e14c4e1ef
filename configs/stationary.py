"""Stationary training: a fixed set of M tasks drawn once from N(0, I_D).

  python -m temporal_icl.main --config=configs/stationary.py --config.M=64 \
      --workdir=runs/stationary_M64
"""

from configs import base


def get_config():
  config = base.get_config()
  config.schedule = "stationary"
  return config
