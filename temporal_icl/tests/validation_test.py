"""Every bad config value gets one sentence naming the field, the value and the rule."""

import pytest

from configs import base
from temporal_icl.training import validation


def _config(**overrides):
  config = base.get_config()
  for dotted, value in overrides.items():
    node = config
    *parents, leaf = dotted.split("__")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


def test_defaults_are_valid():
  assert validation.find_problems(base.get_config()) == []


@pytest.mark.parametrize("overrides, expected", [
    (dict(M=0), "config.M=0 must be a task count >= 1, or -1 for M = ∞"),
    (dict(M=-3), "config.M=-3"),
    (dict(D=0), "config.D=0 must be a positive number"),
    (dict(K=-1), "config.K=-1 must be a positive number"),
    (dict(batch_size=0), "config.batch_size=0 must be a positive number"),
    (dict(num_steps=0), "config.num_steps=0 must be a positive number"),
    (dict(eval_steps="every:-64"), "config.eval_steps='every:-64': 'every:' needs a "
     "positive integer"),
    (dict(noise_var=0.0), "config.noise_var=0.0 must be a positive number"),
    (dict(schedule="mala", gamma=-0.1), "config.gamma=-0.1 must be >= 0"),
    (dict(schedule="dirichlet", R=-2), "config.R=-2 must be >= 0"),
    (dict(schedule="mala", gamma=0.01, R=3), "choose one kind of non-stationarity"),
    (dict(schedule="brownian"), "config.schedule='brownian' is not a schedule; valid: "
     "dirichlet, equispaced, mala, stationary"),
    (dict(head="laplace"), "config.head='laplace' is not a head; valid: gaussian, "
     "mog, point"),
    (dict(energy_distance_steps="every:800"), "config.energy_distance_steps='every:800' "
     "samples the implicit prior, which needs a probabilistic head, but "
     "config.head='point'"),
    (dict(snapshot_steps="log:8"), "config.snapshot_steps='log:8' samples the implicit "
     "prior, which needs a probabilistic head"),
    (dict(head="mog", num_components=0), "config.num_components=0 must be >= 1"),
    (dict(eval_batch_size=0), "config.eval_batch_size=0 must be >= 1"),
    (dict(checkpoint_steps="every"), "config.checkpoint_steps='every'"),
    (dict(delta_tail_start=16), "config.delta_tail_start=16 must lie in [0, K-1=15]"),
    (dict(delta_tail_start=-1), "config.delta_tail_start=-1 must lie in [0, K-1=15]"),
    (dict(delta_prompt_length=0), "config.delta_prompt_length=0 must lie in [1, K=16]"),
    (dict(delta_prompt_length=17), "config.delta_prompt_length=17 must lie in [1, K=16]"),
    (dict(model__num_heads=3), "config.model.num_heads=3 must divide "
     "config.model.embed_size=128"),
    (dict(gamma=0.01), "only acts with schedule 'mala', but config.schedule='stationary'"),
    (dict(R=4), "only acts with schedule 'dirichlet' or 'equispaced'"),
    (dict(schedule="dirichlet", R=0), "needs R >= 1 segments per task"),
    (dict(M=-1, schedule="mala", gamma=0.01), "M = ∞; use schedule='stationary'"),
    (dict(lr_decay_fraction=0.95), "config.lr_decay_fraction=0.95 must lie in [0, 0.9]"),
    (dict(lr_decay_fraction=-0.1), "config.lr_decay_fraction=-0.1 must lie in [0, 0.9]"),
])
def test_each_problem_has_its_sentence(overrides, expected):
  problems = validation.find_problems(_config(**overrides))
  assert len(problems) == 1, problems
  assert expected in problems[0]


def test_batch_must_divide_over_devices():
  problems = validation.find_problems(_config(batch_size=255), num_devices=2)
  assert problems == ["config.batch_size=255 must be divisible by the number of "
                      "devices (2) for data-parallel training."]


def test_validate_lists_all_problems():
  with pytest.raises(validation.ConfigError) as info:
    validation.validate(_config(D=0, head="x"))
  assert len(info.value.problems) == 2


def test_infinite_tasks_are_valid_when_stationary():
  assert validation.find_problems(_config(M=-1)) == []
