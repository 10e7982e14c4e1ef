"""MALA drift: every step each task takes one MALA step that leaves N(0, I_D) invariant.

  python -m temporal_icl.main --config=configs/mala.py --config.M=8 \
      --config.gamma=1e-2 --workdir=runs/mala_M8_g1e-2
"""

from configs import base
from temporal_icl.launching import sweeps

TASK_DIVERSITIES = [2**i for i in range(11)]  # M = 1 … 1024
GAMMAS = [0.0, 1e-4, 1e-3, 1e-2, 1e-1]  # γ = 0 is the stationary baseline
SEEDS = [0, 1, 2]


def get_config():
  config = base.get_config()
  config.schedule = "mala"
  config.gamma = 1e-2  # the paper's "large" drift at which M = 8 turns to ridge
  return config


def get_sweep():
  """The paper's M × γ grid, 3 seeds: 165 runs (launch/local_launch.py runs them)."""
  return sweeps.product(M=TASK_DIVERSITIES, gamma=GAMMAS, seed=SEEDS)
