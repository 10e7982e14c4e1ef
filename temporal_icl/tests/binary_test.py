"""The training binary as a user runs it: its outputs, signals and error messages."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from temporal_icl.analysis import export
from temporal_icl.tests import binary

REPO, TINY = binary.REPO, binary.TINY
run_main, science_history = binary.run_main, binary.science_history


# A probabilistic head and the tail metrics: every metric but the energy distances.
FINISHED_ARGS = ("--config.head=gaussian", "--config.delta_tail_start=2")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """(workdir, completed process) of one finished run of the binary on the tiny config
  with FINISHED_ARGS (tests only read it)."""
  workdir = tmp_path_factory.mktemp("finished")
  result = run_main(workdir, *FINISHED_ARGS)
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir, result


@pytest.fixture
def finished_run(finished):
  return finished[0]


def test_binary_writes_every_metric_for_tensorboard(finished):
  workdir, result = finished
  assert "tensorboard --logdir" in result.stdout
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir))
  acc = event_accumulator.EventAccumulator(
      str(workdir), size_guidance={event_accumulator.TENSORS: 0})
  acc.Reload()
  tags = set(acc.Tags()["tensors"])
  expected = {m for m in export.SPEC_METRICS if not m.startswith("energy_dist")}
  assert expected | {"lr", "train_loss"} <= tags
  steps = [e.step for e in acc.Tensors("test_delta_ridge")]
  assert steps == list(range(0, 49, 8))


def test_export_json_matches_reference_format(finished_run, tmp_path):
  out = tmp_path / "run.json"
  export_run = subprocess.run(
      [sys.executable, "-X", "importtime", "-m", "temporal_icl.analysis.export",
       f"--workdir={finished_run}", f"--out={out}"],
      cwd=REPO, check=True, capture_output=True, text=True)
  # It reads with TensorBoard's pure-Python reader: TensorFlow is never imported
  # (3-4 s of every reader's start), and the values are those read in this process.
  imported = [line.rsplit("|", 1)[-1].strip() for line in export_run.stderr.splitlines()
              if line.startswith("import time:")]
  assert "tensorboard.compat.tensorflow_stub" in imported
  assert "tensorflow" not in imported
  result = json.loads(out.read_text())
  assert result["stats"] == json.loads(json.dumps(export.to_reference_json(
      str(finished_run))["stats"]))
  assert set(result) == {"times", "config", "stats"}
  assert result["times"]["start"] <= result["times"]["end"]
  assert result["config"]["M"] == 4 and result["config"]["schedule"] == "mala"
  assert [row["step"] for row in result["stats"]] == list(range(0, 49, 8))
  measured = {m for m in export.SPEC_METRICS if not m.startswith("energy_dist")}
  for row in result["stats"]:
    assert set(row) == measured | {"step", "lr", "timestamp"}
    assert all(np.isfinite(row[m]) for m in measured)
  # Warm-up: lr rises linearly over the first 10% of 48 steps (4 steps).
  assert result["stats"][0]["lr"] == 0.0 and result["stats"][-1]["lr"] == pytest.approx(3e-3)


def test_sigterm_mid_chunk_is_answered_within_the_chunk_cap_with_a_checkpoint(tmp_path):
  # One boundary at the end of 10^6 steps: without the cap, the first device call
  # would run all of them (many minutes) before the stop request is seen.
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  child = subprocess.Popen(
      [sys.executable, "-m", "temporal_icl.main", f"--config={TINY}",
       f"--workdir={tmp_path}", "--config.num_steps=1000000",
       "--config.eval_steps=every:1000000", "--config.checkpoint_steps=every:1000000",
       "--max_chunk_seconds=0.5"],
      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 120
  while not any(f.startswith("events") for f in os.listdir(tmp_path)):
    assert time.time() < deadline and child.poll() is None, child.communicate()[1][-2000:]
    time.sleep(0.2)
  time.sleep(3)  # past the compile, into the capped chunks
  sent = time.time()
  child.send_signal(signal.SIGTERM)
  _, stderr = child.communicate(timeout=120)
  latency = time.time() - sent
  assert child.returncode == 128 + signal.SIGTERM, stderr[-2000:]
  assert "rerun the same command to resume" in stderr
  assert not os.path.exists(tmp_path / "FINISHED")
  # The cap (0.5 s), plus saving a checkpoint and shutting down, plus the rest of any
  # compile still in flight when the signal came (the loop answers between device
  # calls; on a loaded 2-core machine a compile can outlast the 3 s above: stops of
  # 10.5-21 s were seen there).  Without the cap the first call would run all 10^6
  # steps, about an hour on this CPU.
  assert latency < 30, f"the stop took {latency:.1f} s"
  saved = [int(d) for d in os.listdir(tmp_path / "checkpoints") if d.isdigit()]
  assert len(saved) == 1 and 0 < saved[0] < 1000000


def test_resume_with_a_different_config_is_refused(finished_run):
  result = run_main(finished_run, "--config.M=5")
  assert result.returncode == 2
  assert "M: 4 -> 5" in result.stderr and "force_restart" in result.stderr
  assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_finished_run_extends_and_force_restart_retrains(tmp_path):
  assert run_main(tmp_path).returncode == 0
  # Only num_steps may change: extending a finished run trains on.
  assert run_main(tmp_path, "--config.num_steps=56").returncode == 0
  assert science_history(tmp_path)[-1]["step"] == 56
  restarted = run_main(tmp_path, "--config.M=5", "--config.force_restart=True")
  assert restarted.returncode == 0


def test_bad_config_exits_with_sentences_and_no_traceback(tmp_path):
  result = run_main(tmp_path, "--config.model.num_heads=3", "--config.noise_var=0",
                    "--config.head=cauchy")
  assert result.returncode == 2
  assert "config.model.num_heads=3 must divide config.model.embed_size=16" in result.stderr
  assert "config.noise_var=0" in result.stderr
  assert "config.head='cauchy' is not a head; valid: gaussian, mog, point" in result.stderr
  assert "Traceback" not in result.stderr


def test_misspelt_config_field_is_one_line_with_a_hint(tmp_path):
  result = run_main(tmp_path / "run", "--config.gama=0.1")
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1] == (
      "error: --config.gama: the config has no field 'gama'; did you mean 'gamma'?")
  assert "Traceback" not in result.stderr
  assert not os.path.exists(tmp_path / "run")  # nothing written


def test_batch_not_divisible_by_devices(tmp_path):
  result = run_main(tmp_path, "--config.batch_size=7", devices=2)
  assert result.returncode == 2
  assert "config.batch_size=7 must be divisible by the number of devices (2)" in result.stderr
  assert "Traceback" not in result.stderr


def _tree(root):
  """{relative path: bytes} of every file below `root` (directories as None)."""
  found = {}
  for directory, dirs, files in os.walk(root):
    for name in dirs:
      found[os.path.relpath(os.path.join(directory, name), root)] = None
    for name in files:
      path = os.path.join(directory, name)
      with open(path, "rb") as f:
        found[os.path.relpath(path, root)] = f.read()
  return found


def test_rerunning_the_finished_binary_run_says_so_and_changes_nothing(finished_run):
  before = _tree(finished_run)
  result = run_main(finished_run, *FINISHED_ARGS)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "already finished" in result.stderr
  assert _tree(finished_run) == before
