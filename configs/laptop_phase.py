"""The phase diagram at laptop scale: where does the model switch from dMMSE to ridge?

The laptop replication's setting (configs/laptop_replication.py): the paper's
network (configs/model/paper.gin) at the demo's sizes — D = 4, K = 16, 2 blocks ×
width 64, batch 64 — σ² = 0.25, Adam 3e-3 with 10% warm-up, 9216 steps.  Unlike
the paper, which trains at a constant rate after warm-up, the rate decays linearly
to 0 over the last 25% of steps (README "Reproducing the main result" compares the
two).  The grid: M ∈ {1, 2, 4, …, 1024} × γ ∈ {0, 1e-4, 1e-3, 1e-2, 3e-2} (MALA
drift; γ = 0 leaves the tasks in place) × seeds {0, 1, 2}.  The M values come coarse
to fine (M_ORDER): every γ and seed of M ∈ {1, 32, 1024} first, then {4, 256}, then
the rest, so a sweep cut short already brackets M*.  Trained as run groups (README
"Run groups"), each run in its own workdir, finished runs copied to the ledger
results/laptop_phase/ (README "The phase diagram"):

  python launch/local_launch.py --config=configs/laptop_phase.py \
      --workdir_root=runs/laptop_phase --ledger=results/laptop_phase --parallel=2 \
      --runs_per_process=8

The threshold M*(γ) of each seed comes from `python -m temporal_icl.analysis.phase
--sweep_dir=runs/laptop_phase` (README "The phase diagram").
"""

from configs import laptop_replication
from temporal_icl.launching import sweeps

M_VALUES = [2**i for i in range(11)]  # 1 … 1024
M_ORDER = [1, 32, 1024, 4, 256, 2, 8, 16, 64, 128, 512]  # coarse to fine
GAMMAS = [0.0, 1e-4, 1e-3, 1e-2, 3e-2]
SEEDS = [0, 1, 2]


def get_config():
  return laptop_replication.get_config()  # M = 8, γ = 0: overridden by every point


def get_sweep():
  assert sorted(M_ORDER) == M_VALUES
  return sweeps.product(M=M_ORDER, gamma=GAMMAS, seed=SEEDS)
