"""Dirichlet resampling: each task is replaced at random times, R segments per task.

Segment lengths of each task are proportional to a Dirichlet(1, ..., 1) draw.

  python -m temporal_icl.main --config=configs/resample.py --config.M=32 \
      --config.R=10 --workdir=runs/resample_M32_R10
"""

from configs import base


def get_config():
  config = base.get_config()
  config.schedule = "dirichlet"
  config.R = 10
  return config
