"""A schedule, a measurement and a head from outside the package run through the binary.

examples/sign_flip.py flips every task's sign every 16 steps; examples/task_sum.py
writes the sum of the task entries every 16 steps; examples/laplace_head.py
predicts a Laplace distribution; examples/toy_config.py names all three.
Nothing in temporal_icl/ knows of them.
"""

import os
import subprocess
import sys

import jax
import numpy as np
from scipy import stats

from configs import base
from examples import laplace_head
from examples import toy_config
from temporal_icl.analysis import export
from temporal_icl.core import experiment
from temporal_icl.core import heads
from temporal_icl.core import schedules
from temporal_icl.core import streams
from temporal_icl import measurements
from temporal_icl.tests import binary
from temporal_icl.training import validation


def test_toy_schedule_measurement_and_head_run_through_the_binary(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  result = subprocess.run(
      [sys.executable, "-m", "temporal_icl.main", "--config=examples/toy_config.py",
       f"--workdir={tmp_path}"], cwd=binary.REPO, env=env, capture_output=True,
      text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  steps, sums = export.scalar_array(export.read_scalars(str(tmp_path))["tasks/sum"])
  assert list(steps) == [0, 16, 32, 48, 64]
  # Update s (s = 0, 1, …) flips when s is a positive multiple of 16.  The state
  # measured at step n has had updates 0 … n−1: none flipped at n = 16, one at
  # 32 (update 16), two at 48, three at 64.
  assert abs(sums[0]) > 1e-3
  np.testing.assert_allclose(sums, sums[0] * np.array([1, 1, -1, 1, -1]), rtol=1e-6)
  # The head is the Laplace one: probabilistic, so the NLL is written (a point head
  # writes none); its math is checked in-process below.
  _, nll = export.scalar_array(export.read_scalars(str(tmp_path))["train_nll_model"])
  assert len(nll) == 5 and np.all(np.isfinite(nll))


def test_toy_head_is_found_by_name_and_is_the_laplace_distribution():
  c = base.get_config()
  c.head = "examples.laplace_head"
  head = heads.from_config(c)
  assert isinstance(head, laplace_head.LaplaceHead) and validation.find_problems(c) == []
  raw = jax.random.normal(jax.random.PRNGKey(0), (5, 2))
  y = jax.random.normal(jax.random.PRNGKey(1), (5,))
  loc, scale = head.params(raw)
  np.testing.assert_allclose(head.nll(raw, y), -stats.laplace.logpdf(y, loc, scale),
                             rtol=1e-5)
  draws = head.sample(jax.random.PRNGKey(2), jax.numpy.tile(raw[:1], (20000, 1)))
  assert stats.kstest(draws, stats.laplace(loc[0], scale[0]).cdf).pvalue > 1e-3


def test_unknown_schedule_and_measurement_are_one_sentence_each():
  c = base.get_config()
  c.schedule = "no_such_schedule"
  c.head = "no_such_head"
  c.measurements = c.measurements + ("no_such_measurement",)
  problems = validation.find_problems(c)
  assert any(p.startswith("config.schedule='no_such_schedule' is not a schedule; valid: "
                          + ", ".join(schedules.names())) for p in problems), problems
  assert any("'no_such_measurement', which is not a measurement; valid: " in p
             for p in problems), problems
  assert ("config.head='no_such_head' is not a head; valid: gaussian, mog, point, or an "
          "importable module path.") in problems


def test_a_scalar_measurement_is_a_compute_and_the_loop_writes_it():
  """examples/task_sum.py holds no writer: its compute returns {'tasks/sum': x} and
  the loop's write (measure_once writes as the loop does) puts x in the run's writer.
  As an outside module it also has a random stream of its own."""
  c = toy_config.get_config()
  experiment.parse_gin(c)
  exp = experiment.build(c)
  state = experiment.init_state(exp, c)
  written = []

  class Writer:
    def write_scalars(self, step, scalars):
      written.append((step, scalars))

    def write_histograms(self, step, histograms):
      raise AssertionError(f"no histograms: {histograms}")

  got = measurements.measure_once("examples.task_sum", c, exp, state, Writer())
  want = float(np.sum(np.asarray(state.schedule.tasks)))
  np.testing.assert_allclose(float(got["tasks/sum"]), want, rtol=1e-6)
  assert [(s, list(v)) for s, v in written] == [(0, ["tasks/sum"])]
  np.testing.assert_allclose(written[0][1]["tasks/sum"], want, rtol=1e-6)
  keys = experiment.run_data(c).keys
  own = np.asarray(keys["examples.task_sum"])
  assert not any(np.array_equal(own, np.asarray(keys[s])) for s in streams.STREAMS)
  np.testing.assert_array_equal(own, streams.key(c.seed, "examples.task_sum"))
