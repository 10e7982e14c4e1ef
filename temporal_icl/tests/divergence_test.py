"""A run that diverges after a checkpoint keeps that checkpoint, the last good state."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from temporal_icl.common import workdir as workdir_lib
from temporal_icl.core import experiment
from temporal_icl.tests import tiny_config
from temporal_icl.training import train

EXPLODES_AT = 20  # the first Adam update with an infinite rate: step 20 -> 21


def _exploding_learning_rate(original):
  """experiment.learning_rate, with an infinite rate from update EXPLODES_AT on."""
  def learning_rate(config, peak=None):
    schedule = original(config, peak)
    return lambda count: jnp.where(count < EXPLODES_AT, schedule(count), jnp.inf)
  return learning_rate


def test_divergence_after_a_checkpoint_keeps_the_last_good_one(tmp_path, monkeypatch):
  # The tiny config checkpoints every 16 steps; with no evaluations, steps 0-16 and
  # 16-32 are one device call each, checked for divergence at their end: the
  # parameters become infinite at step 21, found at step 32, after the checkpoint of
  # step 16 and before that of step 32 would be written.
  config = tiny_config.get_config()
  config.eval_steps = ""
  assert config.checkpoint_steps == "every:16"
  monkeypatch.setattr(experiment, "learning_rate",
                      _exploding_learning_rate(experiment.learning_rate))
  # The reference: the same run (the same compiled program, so the same bits),
  # stopped at step 16, before its rate explodes.
  good = train.train_and_evaluate(config, str(tmp_path / "good"),
                                  should_stop=lambda step: step >= 16)
  assert int(good.step) == 16
  assert np.all(np.isfinite(np.concatenate(
      [np.ravel(x) for x in jax.tree.leaves(good.params)])))

  workdir = tmp_path / "diverged"
  with pytest.raises(train.Diverged) as raised:
    train.train_and_evaluate(config, str(workdir))
  message = str(raised.value)
  assert "between steps 16 and 32" in message
  assert "the last good checkpoint is step 16" in message
  assert (workdir / workdir_lib.DIVERGED_FILE).read_text().strip() == message
  assert not os.path.exists(workdir / workdir_lib.FINISHED_FILE)

  # Exactly one checkpoint, of step 16, holding the reference's state at step 16.
  with workdir_lib.checkpoint_manager(str(workdir)) as manager:
    assert list(manager.all_steps()) == [16]
    kept = workdir_lib.restore(manager, 16, good)
  assert int(kept.step) == 16
  good_leaves, kept_leaves = jax.tree.leaves(good), jax.tree.leaves(kept)
  assert len(kept_leaves) == len(good_leaves)
  for a, b in zip(good_leaves, kept_leaves):
    np.testing.assert_array_equal(np.asarray(b), np.asarray(a))
