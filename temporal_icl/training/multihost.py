"""Several processes (hosts) training one run together.

Each process runs the same command with its own `process_id`; process 0 hosts
the coordinator.  `initialize` passes every setting to `jax.distributed`
explicitly (JAX does not read JAX_NUM_PROCESSES / JAX_PROCESS_ID by itself) and,
on CPU, switches cross-process collectives to gloo, without which a CPU mesh
cannot span processes.  `any_process` is how the hosts agree on a stop request
so that none enters a collective checkpoint alone.
"""

from typing import NamedTuple, Optional

import jax
from jax.experimental import multihost_utils
import numpy as np


class Cluster(NamedTuple):
  coordinator_address: str  # host:port of process 0's coordinator
  num_processes: int
  process_id: int
  timeout_s: int  # a host silent this long is declared dead and every process stops


class ClusterError(ValueError):
  """A multi-host setting that cannot work; the message is one sentence."""


def cluster_from(coordinator_address: Optional[str], num_processes: Optional[int],
                 process_id: Optional[int], timeout_s: int) -> Optional[Cluster]:
  """The cluster these settings describe, None for a single process.

  Raises:
    ClusterError: when the settings are incomplete or inconsistent.
  """
  given = {"coordinator_address": coordinator_address, "num_processes": num_processes,
           "process_id": process_id}
  if all(v in (None, "") for v in given.values()):
    return None
  missing = [name for name, v in given.items() if v in (None, "")]
  if missing:
    raise ClusterError(
        f"Multi-host needs coordinator_address, num_processes and process_id; "
        f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set "
        f"(flags --{', --'.join(missing)} or the JAX_* variables in README 'Multi-host').")
  if ":" not in coordinator_address:
    raise ClusterError(f"coordinator_address={coordinator_address!r} must be host:port.")
  if num_processes < 1 or not 0 <= process_id < num_processes:
    raise ClusterError(f"process_id={process_id} must lie in [0, num_processes="
                       f"{num_processes}).")
  if timeout_s < 1:
    raise ClusterError(f"host_timeout={timeout_s} must be at least 1 second.")
  return Cluster(coordinator_address, int(num_processes), int(process_id), int(timeout_s))


def initialize(cluster: Cluster) -> None:
  """Joins this process to the cluster; call before any other JAX work."""
  # Only the CPU backend reads this; accelerators keep their own collectives.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(
      coordinator_address=cluster.coordinator_address,
      num_processes=cluster.num_processes,
      process_id=cluster.process_id,
      initialization_timeout=cluster.timeout_s,
      heartbeat_timeout_seconds=cluster.timeout_s)


def any_process(flag: bool) -> bool:
  """True on every process if `flag` is True on at least one (a collective)."""
  if jax.process_count() == 1:
    return bool(flag)
  flags = multihost_utils.process_allgather(np.asarray(flag, np.int32))
  return bool(np.any(flags))


def sync(name: str) -> None:
  """Waits until every process reaches the point called `name` (no-op alone)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def min_over_processes(value: int) -> int:
  """The smallest of every process's `value` (a collective; `value` alone)."""
  if jax.process_count() == 1:
    return int(value)
  return int(np.min(multihost_utils.process_allgather(np.asarray(value, np.int64))))
