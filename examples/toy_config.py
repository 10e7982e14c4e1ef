"""The two toy extensions at work on a tiny run (seconds on a CPU):

  python -m temporal_icl.main --config=examples/toy_config.py --workdir=/tmp/toy

Its tasks flip sign every 16 steps (examples/sign_flip.py) and their sum is
written at the same steps (examples/task_sum.py): the curve `tasks/sum` in
TensorBoard alternates in sign.
"""

from configs import demo


def get_config():
  config = demo.get_config()
  config.M, config.D, config.K = 4, 2, 4
  config.delta_prompt_length = 4
  config.model.num_blocks, config.model.embed_size, config.model.mlp_size = 1, 16, 16
  config.batch_size, config.num_steps, config.eval_every = 8, 64, 16
  config.eval_batch_size, config.checkpoint_every = 16, 32

  config.schedule = "examples.sign_flip"  # the toy schedule ...
  config.gamma = 0.0
  config.flip_every = 16  # ... and its parameter
  config.measurements += ("examples.task_sum",)  # the toy measurement ...
  config.task_sum_steps = "every:16"  # ... and its steps
  return config
