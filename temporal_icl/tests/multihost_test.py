"""Two processes on localhost train one run together, as README "Multi-host" says."""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from temporal_icl.tests import binary
from temporal_icl.training import multihost

REPO, TINY = binary.REPO, binary.TINY


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def start_processes(workdir, *overrides, timeout_s=60):
  """Starts the binary as processes 0 and 1 of a 2-process run (1 CPU device each)."""
  env = binary.cpu_env(1)
  address = f"127.0.0.1:{free_port()}"
  return [subprocess.Popen(
      [sys.executable, "-m", "temporal_icl.main", f"--config={TINY}",
       f"--workdir={workdir}", f"--coordinator_address={address}", "--num_processes=2",
       f"--process_id={i}", f"--host_timeout={timeout_s}", *overrides],
      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
          for i in range(2)]


def finish(processes, timeout=300):
  """(return codes, stderrs) once every process has exited."""
  outputs = [p.communicate(timeout=timeout)[1] for p in processes]
  return [p.returncode for p in processes], outputs


def wait_for_events_file(workdir, processes, timeout=120):
  deadline = time.time() + timeout
  while not (os.path.isdir(workdir)
             and any(f.startswith("events") for f in os.listdir(workdir))):
    assert time.time() < deadline, "no summaries after 120 s"
    assert all(p.poll() is None for p in processes), finish(processes)[1][0][-2000:]
    time.sleep(0.1)


def test_two_processes_stop_together_resume_and_match_one_process(tmp_path,
                                                                   two_device_run):
  # The run, interrupted: SIGTERM reaches process 1 only, as soon as process 0 has
  # written its first summaries (the first chunk is still compiling); both
  # processes must stop at the same boundary and checkpoint it.
  workdir = tmp_path / "two_processes"
  processes = start_processes(workdir)
  wait_for_events_file(workdir, processes)
  processes[1].send_signal(signal.SIGTERM)
  codes, stderrs = finish(processes)
  assert codes == [143, 143], stderrs[0][-2000:] + stderrs[1][-2000:]
  assert "Stopped by a stop request on another host" in stderrs[0]
  assert "Stopped by SIGTERM" in stderrs[1]
  stopped_at = max(int(d) for d in os.listdir(workdir / "checkpoints") if d.isdigit())
  assert 0 < stopped_at < 48, f"stopped at {stopped_at}: too late for this test"

  # Resumed by the same two processes, to the end.
  codes, stderrs = finish(start_processes(workdir))
  assert codes == [0, 0], stderrs[0][-2000:] + stderrs[1][-2000:]

  # Against one process holding both devices, uninterrupted.
  together = binary.science_history(workdir)
  single = binary.science_history(two_device_run)
  assert [r["step"] for r in together] == [r["step"] for r in single] == list(
      range(0, 49, 8))
  for a, b in zip(together, single):
    for key in a:
      np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-7, err_msg=key)
  # Process 0 alone writes summaries: one events file per launch, none from process 1.
  assert len([f for f in os.listdir(workdir) if f.startswith("events")]) == 2


@pytest.mark.slow
def test_a_dead_host_stops_the_others_after_the_timeout(tmp_path):
  processes = start_processes(tmp_path, "--config.num_steps=1000000", timeout_s=5)
  wait_for_events_file(tmp_path, processes)
  time.sleep(1)
  processes[1].kill()
  killed = time.time()
  codes, stderrs = finish(processes, timeout=120)
  assert codes[0] != 0
  assert time.time() - killed < 60
  assert "another task died" in stderrs[0]


@pytest.mark.parametrize("settings, message", [
    (("127.0.0.1:1234", 2, None), "process_id is not set"),
    ((None, None, 0), "coordinator_address and num_processes are not set"),
    (("127.0.0.1", 2, 0), "must be host:port"),
    (("127.0.0.1:1234", 2, 2), "process_id=2 must lie in [0, num_processes=2)"),
])
def test_incomplete_or_inconsistent_clusters_are_one_sentence(settings, message):
  with pytest.raises(multihost.ClusterError, match=re.escape(message)):
    multihost.cluster_from(*settings, timeout_s=100)


def test_no_cluster_settings_mean_one_process():
  assert multihost.cluster_from(None, None, None, timeout_s=100) is None
  assert multihost.cluster_from("", None, None, timeout_s=100) is None
  assert multihost.cluster_from("h:1", 4, 3, 7) == multihost.Cluster("h:1", 4, 3, 7)
