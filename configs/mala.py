"""MALA drift: every step each task takes one MALA step that leaves N(0, I_D) invariant.

  python -m temporal_icl.main --config=configs/mala.py --config.M=8 \
      --config.gamma=1e-2 --workdir=runs/mala_M8_g1e-2
"""

from configs import base


def get_config():
  config = base.get_config()
  config.schedule = "mala"
  config.gamma = 1e-2  # the paper's "large" drift at which M = 8 turns to ridge
  return config
