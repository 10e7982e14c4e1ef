"""The paper's defaults (Appendix A); every other config starts from this one.

Stationary training on M = 8 tasks at paper size:

  python -m temporal_icl.main --config=configs/base.py --workdir=runs/base
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """Returns the paper's configuration; variants override fields of it."""
  c = ml_collections.ConfigDict()

  # --- Task distribution -----------------------------------------------------
  c.M = 8  # task diversity; -1 means M = ∞ (fresh N(0, I_D) task per sequence)
  c.D = 8  # task / input dimension
  c.K = 16  # in-context pairs per sequence
  c.noise_var = 0.25  # observation noise variance σ²

  # --- Non-stationarity --------------------------------------------------------
  # schedule: 'stationary' | 'mala' (uses gamma) | 'dirichlet' (uses R)
  #           | 'equispaced' (uses R).
  c.schedule = "stationary"
  c.gamma = 0.0  # MALA step size γ
  c.R = 0  # resampling segments per task (0 = off)

  c.seed = 42

  # --- Model (sizes here; structural choices in configs/model/*.gin) -----------
  c.head = "point"  # 'point' | 'gaussian' | 'mog'
  c.num_components = 4  # G, mixture components of the 'mog' head
  c.model = ml_collections.ConfigDict()
  c.model.num_blocks = 8
  c.model.num_heads = 2
  c.model.embed_size = 128
  c.model.mlp_size = 128
  c.gin_files = ("configs/model/paper.gin",)
  c.gin_bindings = ()

  # --- Optimisation ------------------------------------------------------------
  c.num_steps = 524288  # T = 2**19
  c.learning_rate = 3e-3  # Adam peak learning rate
  c.lr_warmup = True  # linear from 0 over the first 10% of steps, then constant
  c.lr_decay_fraction = 0.0  # > 0: linear decay to 0 over this final fraction of steps
  c.batch_size = 256

  # --- Measurements ------------------------------------------------------------
  # Modules of temporal_icl.measurements (or dotted paths to your own).  Each runs
  # at the steps of its `*_steps` field, a step spec (temporal_icl/common/step_specs.py):
  # '' never | 'every:N' | 'log:N' | '10,100,…' | specs joined by '+'.
  c.measurements = ("evaluation", "energy_distance", "prior_snapshots", "llc",
                    "trajectory")
  c.eval_steps = "every:64"
  c.eval_batch_size = 1024
  c.delta_prompt_length = 16
  c.delta_tail_start = ml_collections.config_dict.placeholder(int)  # None = off
  c.energy_distance_steps = ""  # the paper measured 'every:800'
  c.energy_num_samples = 5000  # PMC rollouts (of K pairs) per energy distance

  # Held-out set: '' = eval_batch_size sequences drawn from the run's seed; a TFDS
  # set such as 'iclr_eval/d8_k16' scores every run of a sweep on the same ones.
  c.eval_dataset = ""
  c.eval_data_dir = ""  # TFDS data_dir ('' = TFDS's default, ~/tensorflow_datasets)

  # --- Prior-tracking snapshots (configs/prior_tracking.py turns them on) ------
  c.snapshot_steps = ""
  c.num_pr_samples = 200  # PMC rollouts per snapshot
  c.pr_generation_steps = 16  # pairs per snapshot rollout
  c.dense_snapshot_period = ml_collections.config_dict.placeholder(int)
  c.dense_step_start = ml_collections.config_dict.placeholder(int)
  c.dense_step_end = ml_collections.config_dict.placeholder(int)
  c.dense_snapshot_window = 2048  # dense window after each resampling event

  # --- Developmental analysis --------------------------------------------------
  c.trajectory_steps = ""  # states kept in workdir/trajectory/ for essential dynamics
  c.llc_steps = ""  # local learning coefficient, e.g. 'log:16'
  # SGLD in devinterp's terms (README "Developmental analysis").
  c.llc = ml_collections.ConfigDict()
  c.llc.epsilon = 1e-4  # SGLD step size ε (devinterp: lr)
  c.llc.localization = 100.0  # γ, pull towards the trained weights (not the MALA γ)
  c.llc.nbeta = ml_collections.config_dict.placeholder(float)  # nβ; None: m / log m
  c.llc.num_chains = 4  # chains, run in parallel
  c.llc.num_burnin_steps = 0  # SGLD steps before the draws
  c.llc.num_draws = 200  # SGLD steps per chain whose losses are averaged
  c.llc.batch_size = 64  # m, sequences per SGLD minibatch
  c.llc.dataset_size = 1024  # n, fixed sequences from the current task set

  # --- Checkpoints -------------------------------------------------------------
  c.checkpoint_steps = "every:8192"
  c.keep_final_checkpoint = True
  c.force_restart = False

  return c
