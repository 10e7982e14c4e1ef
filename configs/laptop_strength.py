"""The strength sweep: configs/laptop_replication.py at three times the length.

The same four cases and seeds, 27648 steps each (≈ 2 h 40 min for the 12 runs on
2 cores), to measure how the separation between the Bayes predictors grows with
training length (README "Reproducing the main result").

  python launch/local_launch.py --config=configs/laptop_strength.py \
      --workdir_root=runs/laptop_strength --parallel=2
"""

from configs import laptop_replication


def get_config():
  config = laptop_replication.get_config()
  config.num_steps = 3 * 9216
  return config


get_sweep = laptop_replication.get_sweep
