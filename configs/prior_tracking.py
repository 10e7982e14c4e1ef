"""Prior tracking in 1-D: snapshots of the implicit prior over training.

The 1-D setting (D = 1, M = 1, K = 64, gaussian head) where the prior can be
seen as a histogram on the line.  The argument after ':' picks the schedule:

  python -m temporal_icl.main --config=configs/prior_tracking.py:stationary \
      --workdir=runs/track_stationary
  python -m temporal_icl.main --config=configs/prior_tracking.py:mala \
      --config.gamma=1e-2 --workdir=runs/track_mala
  python -m temporal_icl.main --config=configs/prior_tracking.py:equispaced \
      --config.R=64 --workdir=runs/track_R64

Dense snapshots in a window:  --config.dense_snapshot_period=64
  --config.dense_step_start=40000 --config.dense_step_end=50000
(with only the period and a resampling schedule, the window follows each event).
Writes <workdir>/snapshots.npz beside the usual summaries and checkpoints.
"""

from configs import base

SCHEDULE_DEFAULTS = {"stationary": {}, "mala": {"gamma": 1e-2}, "equispaced": {"R": 64}}


def get_config(schedule: str = "stationary"):
  if schedule not in SCHEDULE_DEFAULTS:
    raise ValueError(f"prior_tracking.py:{schedule}: choose one of "
                     f"{', '.join(SCHEDULE_DEFAULTS)}.")
  config = base.get_config()
  config.seed = 0
  config.D = 1
  config.M = 1
  config.K = 64
  config.head = "gaussian"
  config.schedule = schedule
  for field, value in SCHEDULE_DEFAULTS[schedule].items():
    config[field] = value
  config.snapshot_steps = "every:512"
  return config
