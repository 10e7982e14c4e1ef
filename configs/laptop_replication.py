"""The paper's main finding at laptop scale: task diversity × MALA drift on a 2-core CPU.

The paper's four runs (M = 8 and 64 stationary, M = 8 with γ = 1e-3 and 1e-2),
plus M = 512 stationary to anchor the generalising side, each with 3 seeds, at
the demo's sizes (D = 4, K = 16, a 2-block width-64 transformer, batch 64) for
6144 steps; σ² = 0.25 and Adam 3e-3 with 10% warm-up as in base.py.

  python launch/local_launch.py --config=configs/laptop_replication.py \
      --workdir_root=runs/laptop --parallel=2

README "Reproducing the main result" gives its wall time, its results (which of
the paper's four claims hold at this scale and which do not) and the search that
led here.
"""

from configs import demo
from temporal_icl import sweeps

SEEDS = [0, 1, 2]


def get_config():
  config = demo.get_config()  # the demo's sizes: D = 4, K = 16, 2 × 64 blocks, batch 64
  config.schedule = "mala"  # γ = 0 leaves every task in place: stationary
  config.gamma = 0.0
  config.M = 8
  config.num_steps = 6144
  config.eval_every = 512
  config.checkpoint_every = 2048
  return config


def get_sweep():
  stationary = sweeps.product(M=[8, 64, 512], gamma=[0.0], seed=SEEDS)
  drifting = sweeps.product(M=[8], gamma=[1e-3, 1e-2], seed=SEEDS)
  return sweeps.chain(stationary, drifting)
