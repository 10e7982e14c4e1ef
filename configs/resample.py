"""Dirichlet resampling: each task is replaced at random times, R segments per task.

Segment lengths of each task are proportional to a Dirichlet(1, ..., 1) draw.

  python -m temporal_icl.main --config=configs/resample.py --config.M=32 \
      --config.R=10 --workdir=runs/resample_M32_R10
"""

from configs import base
from temporal_icl.launching import sweeps

TASK_DIVERSITIES = [2**i for i in range(11)]  # M = 1 … 1024
RESAMPLINGS = [1, 4, 16, 64, 256]  # R = 1: each task kept for the whole run
SEEDS = [0, 1, 2]


def get_config():
  config = base.get_config()
  config.schedule = "dirichlet"
  config.R = 10
  return config


def get_sweep():
  """M × R grid, 3 seeds: 165 runs."""
  return sweeps.product(M=TASK_DIVERSITIES, R=RESAMPLINGS, seed=SEEDS)
