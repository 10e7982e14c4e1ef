"""The paper's main finding at laptop scale: an M × γ sweep on a 2-core CPU.

Small task diversity M memorises (dMMSE) when the tasks stand still, large M
generalises (ridge); a large enough MALA drift γ turns small M to ridge while a
small one does not.  The whole sweep (3 seeds) and its phase diagram:

  python launch/local_launch.py --config=configs/laptop_replication.py \
      --workdir_root=runs/laptop --parallel=2

README "Reproducing the main result" gives its wall time and results.
"""

from configs import base
from temporal_icl import sweeps

TASK_DIVERSITIES = [2, 8, 32, 128, 1024]
GAMMAS = [0.0, 1e-3, 3e-2]
SEEDS = [0, 1, 2]


def get_config():
  config = base.get_config()
  config.schedule = "mala"  # γ = 0 leaves every task in place: stationary
  config.gamma = 0.0
  config.M = 2
  config.D = 4
  config.K = 16
  config.model.num_blocks = 2
  config.model.num_heads = 2
  config.model.embed_size = 64
  config.model.mlp_size = 64
  config.batch_size = 64
  config.num_steps = 4096
  config.eval_every = 256
  config.eval_batch_size = 512
  config.checkpoint_every = 1024
  return config


def get_sweep():
  return sweeps.product(M=TASK_DIVERSITIES, gamma=GAMMAS, seed=SEEDS)
