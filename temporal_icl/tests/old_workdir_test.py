"""A workdir written before the package was split into layers still resumes.

testdata/workdir_before_layers is a run of the tiny config (tiny_config.py)
written by the code of commit 6be7904 (version 0.1.0, one flat package), stopped
at step 24 of 48 with checkpoints at 16 and 24 (368 kB):

  from temporal_icl import train   # today: temporal_icl.training.train
  from temporal_icl.tests import tiny_config
  train.train_and_evaluate(tiny_config.get_config(), "workdir_before_layers",
                           should_stop=lambda step: step >= 24)

(train_and_evaluate is what `python -m temporal_icl.main` runs for one config.)
Resumed by today's code it must finish with finite metrics and equal an
uninterrupted run of the same config.  Not bit for bit, as train_test's resume is:
the fixture's first 24 steps were taken on one CPU kind (AVX2) and may be rounded
otherwise on another (AVX-512); a restore that dropped or misplaced any part of the
state (parameters, Adam's moments, the task set, the step) differs by far more than
rounding.
"""

import math
import os
import shutil

import jax
import numpy as np

from temporal_icl.tests import binary
from temporal_icl.tests import tiny_config
from temporal_icl.training import train

FIXTURE = os.path.join(os.path.dirname(__file__), "testdata", "workdir_before_layers")


def leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_a_workdir_written_before_the_layers_resumes_to_an_uninterrupted_run(tmp_path):
  config = tiny_config.get_config()
  old = tmp_path / "old"
  shutil.copytree(FIXTURE, old)  # testdata stays untouched (and may be read-only)
  resumed = train.train_and_evaluate(config, str(old))
  assert int(resumed.step) == config.num_steps
  history = binary.science_history(old)
  assert history[-1]["step"] == config.num_steps
  values = [v for row in history for v in row.values() if isinstance(v, float)]
  assert values and all(math.isfinite(v) for v in values)

  whole = train.train_and_evaluate(config, str(tmp_path / "whole"))
  whole_leaves, resumed_leaves = leaves(whole), leaves(resumed)
  assert len(whole_leaves) == len(resumed_leaves)
  for a, b in zip(whole_leaves, resumed_leaves):
    np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)
  want = binary.science_history(tmp_path / "whole")
  assert [sorted(row) for row in history] == [sorted(row) for row in want]
  for got_row, want_row in zip(history, want):
    for tag, value in want_row.items():
      np.testing.assert_allclose(got_row[tag], value, rtol=1e-3, atol=1e-5, err_msg=tag)
