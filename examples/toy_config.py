"""The three toy extensions at work on a tiny run (seconds on a CPU):

  python -m temporal_icl.main --config=examples/toy_config.py --workdir=/tmp/toy

Its tasks flip sign every 16 steps (examples/sign_flip.py) and their sum is
written at the same steps (examples/task_sum.py): the curve `tasks/sum` in
TensorBoard alternates in sign.  The network predicts a Laplace distribution
(examples/laplace_head.py), so `nll_model` is its Laplace NLL.
"""

from configs import demo


def get_config():
  config = demo.get_config()
  config.M, config.D, config.K = 4, 2, 4
  config.delta_prompt_length = 4
  config.model.num_blocks, config.model.embed_size, config.model.mlp_size = 1, 16, 16
  config.batch_size, config.num_steps, config.eval_steps = 8, 64, "every:16"
  config.eval_batch_size, config.checkpoint_steps = 16, "every:32"

  config.schedule = "examples.sign_flip"  # the toy schedule ...
  config.gamma = 0.0
  config.flip_every = 16  # ... and its parameter
  config.measurements += ("examples.task_sum",)  # the toy measurement ...
  config.task_sum_steps = "every:16"  # ... and its steps
  config.head = "examples.laplace_head"  # the toy head
  return config
