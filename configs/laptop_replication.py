"""The paper's main finding at laptop scale: four claims, 3 seeds each, ≤ 60 min on 2 cores.

The demo's sizes (D = 4, K = 16, a 2-block width-64 transformer, batch 64) with the
paper's network (configs/model/paper.gin), σ² = 0.25 and Adam 3e-3 with 10% warm-up,
for 9216 steps.  Unlike the paper (constant rate after warm-up), the rate decays
linearly to 0 over the last 25% of steps: README "Reproducing the main result" shows
the constant-rate runs beside these.  The four cases:

  M = 8 stationary          -> dMMSE  (claim 1, and the control of the drifting runs)
  M = 256 stationary        -> ridge  (claim 2)
  M = 8, γ = 1e-5 (slow)    -> dMMSE  (claim 3)
  M = 8, γ = 3e-2 (fast)    -> ridge  (claim 4)

  python launch/local_launch.py --config=configs/laptop_replication.py \
      --workdir_root=runs/laptop --parallel=2
"""

from configs import demo
from temporal_icl.launching import sweeps

SEEDS = [0, 1, 2]


def get_config():
  config = demo.get_config()
  config.schedule = "mala"  # γ = 0 leaves every task in place: stationary
  config.gamma = 0.0
  config.M = 8
  config.num_steps = 9216
  config.lr_decay_fraction = 0.25
  config.eval_steps = "every:1024"
  config.checkpoint_steps = "every:3072"
  return config


def get_sweep():
  stationary = sweeps.product(M=[8, 256], gamma=[0.0], seed=SEEDS)
  drifting = sweeps.product(M=[8], gamma=[1e-5, 3e-2], seed=SEEDS)
  return sweeps.chain(stationary, drifting)
