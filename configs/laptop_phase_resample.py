"""The phase diagram's second kind of non-stationarity: Dirichlet resampling, M × R.

The setting of configs/laptop_phase.py (the laptop replication's network, data and
9216 steps), with tasks replaced at Dirichlet-random times instead of drifting: each
task's run is cut into R segments (R − 1 replacements), R ∈ {1, 4, 16, 64}, where
R = 1 keeps every task for the whole run (stationary).  M coarse to fine as in
laptop_phase, 3 seeds: 132 runs.

  python launch/local_launch.py --config=configs/laptop_phase_resample.py \
      --workdir_root=runs/laptop_phase_resample \
      --ledger=results/laptop_phase_resample --parallel=2 --runs_per_process=8
  python -m temporal_icl.analysis.phase --sweep_dir=results/laptop_phase_resample --markdown
"""

from configs import laptop_phase
from temporal_icl.launching import sweeps

SEGMENTS = [1, 4, 16, 64]


def get_config():
  config = laptop_phase.get_config()
  config.schedule = "dirichlet"
  config.R = 1  # overridden by every point
  return config


def get_sweep():
  return sweeps.product(M=laptop_phase.M_ORDER, R=SEGMENTS, seed=laptop_phase.SEEDS)
