"""Training over several processes (machines) with JAX's multi-controller runtime.

Every process runs the same command with the same config; `jax.distributed.initialize` connects
them through a coordinator (process 0), after which the training step is `pmap`ped over the
devices of all processes (`ppo.split_over_devices`): each process feeds and reads back only its
own devices' shard, and the step's `pmean`/`psum`s (gradients, normaliser statistics, advantage
standardisation, metrics) span every device, so the parameters stay identical everywhere.

    initialize(run)     flags or the cluster launcher's environment -> jax.distributed.initialize,
                        bounded by `run.coordinator_timeout` (a clear error, never a hang)
    check_agreement()   all processes run the same config, dataset, jax and device count
    check_same_state()  ... and start from the same parameters (a task's frozen LLC included)
    is_primary()        process 0: the one that writes logs, run_info.json and the progress bar
    gather_device_axis  every process's device shards of a pmapped pytree, on every process
    any_process         whether a flag (a stop request) is set on any process

On CPU the collectives between processes go through gloo (`jax_cpu_collectives_implementation`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading

import jax
import numpy as np

from ase_jax.errors import AseInputError

# Launchers whose environment jax.distributed.initialize reads by itself (jax/_src/clusters/):
# (process-count variable, variables that must also be present).
_LAUNCHERS = {"SLURM (srun)": ("SLURM_NTASKS", ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_PROCID",
                                                "SLURM_LOCALID")),
              "Open MPI (mpirun)": ("OMPI_COMM_WORLD_SIZE", ("OMPI_MCA_orte_hnp_uri", "OMPI_COMM_WORLD_RANK"))}


_joined = False  # this process called jax.distributed.initialize


class DistributedError(AseInputError):
    """The processes of a multi-process run could not connect, or disagree."""


def launcher() -> str | None:
    """The cluster launcher that started this process as one of several, if any."""
    for name, (count, others) in _LAUNCHERS.items():
        if all(v in os.environ for v in (count, *others)) and os.environ[count].isdigit() and int(os.environ[count]) > 1:
            return name
    return None


def is_multiprocess() -> bool:
    return jax.process_count() > 1


def is_primary() -> bool:
    return jax.process_index() == 0


def initialize(run) -> bool:
    """Connects this process to the others of its run; False (nothing done) for a single process.

    Explicit flags (`coordinator_address=HOST:PORT`, `num_processes`, `process_id`) win; with
    `coordinator_address=auto`, or none and a launcher (srun, mpirun) that started several
    processes, jax reads all three from the launcher's environment. Must run before anything
    touches a jax device. When not every process has reached the coordinator after
    `run.coordinator_timeout` seconds, exits this process with status 1 and a one-line error (jax's
    own client would abort the process with a stack trace a few seconds later)."""
    address = run.coordinator_address.strip()
    if address == "" and run.num_processes > 1:
        raise DistributedError(f"num_processes={run.num_processes} needs --coordinator_address=HOST:PORT (the "
                               "address of process 0), or coordinator_address=auto under a cluster launcher")
    auto = address == "auto" or (address == "" and launcher() is not None)
    if address == "" and not auto:
        return False
    if not auto:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise DistributedError(f"coordinator_address={address!r}: expected HOST:PORT, e.g. 10.0.0.1:1234")
        if not 0 <= run.process_id < run.num_processes:
            raise DistributedError(f"process_id={run.process_id} must be in 0 .. num_processes - 1 = "
                                   f"{run.num_processes - 1}")
        if run.num_processes == 1:
            return False
    if jax.config.jax_cpu_collectives_implementation in (None, "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    where = "the launcher's coordinator" if auto else f"the coordinator at {address}"
    who = "" if auto else f" (process {run.process_id} of {run.num_processes})"
    timeout = run.coordinator_timeout
    done = threading.Event()

    def give_up():
        if not done.wait(timeout):
            sys.stderr.write(f"error: not all processes reached {where} within coordinator_timeout={timeout} s"
                             f"{who}: start every process with the same --coordinator_address and "
                             f"--num_processes, and check that process 0 is reachable on that port\n")
            sys.stderr.flush()
            os._exit(1)  # jax's client would abort the process (SIGABRT) with a stack trace

    threading.Thread(target=give_up, daemon=True, name="ase_jax coordinator timeout").start()
    try:
        if auto:
            jax.distributed.initialize(initialization_timeout=timeout + 30)
        else:
            jax.distributed.initialize(address, run.num_processes, run.process_id,
                                       initialization_timeout=timeout + 30)
    except (RuntimeError, ValueError) as e:
        raise DistributedError(f"could not start the multi-process runtime with {where}{who}: {e}") from None
    finally:
        done.set()
    global _joined
    _joined = True
    return True


def joined() -> bool:
    """Whether this process is one of a multi-process run (`initialize` connected it)."""
    return _joined


def exit_now_if_joined(status: int) -> None:
    """After an error in a multi-process run: exit at once, skipping jax's shutdown barrier (which
    waits up to 5 minutes for every process), so that the others' next collective fails instead of
    waiting for this process. Nothing for a single process."""
    if _joined:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def dataset_digest(config) -> str:
    """A digest of the motion files the config names (the clip bytes and weights), or of the error
    reading them (which the run itself will then report)."""
    from ase_jax.package_data import resolve_path
    from ase_jax.motions.dataset import read_dataset_entries

    digest = hashlib.sha256()
    try:
        for entry in read_dataset_entries(resolve_path(config.env.motions)):
            digest.update(f"{entry.path.name}:{entry.weight}\n".encode())
            digest.update(entry.path.read_bytes())
    except (AseInputError, OSError) as e:
        digest.update(f"unreadable: {e}".encode())
    return digest.hexdigest()


def _allgather_strings(values: dict[str, str]) -> list[dict[str, str]]:
    """Every process's `values` (the same keys everywhere), on every process."""
    from jax.experimental import multihost_utils

    blob = json.dumps(values, sort_keys=True).encode()
    sizes = multihost_utils.process_allgather(np.array([len(blob)], np.int32))
    padded = np.zeros(int(np.max(sizes)), np.uint8)
    padded[: len(blob)] = np.frombuffer(blob, np.uint8)
    gathered = np.asarray(multihost_utils.process_allgather(padded))
    return [json.loads(bytes(row[: int(n)]).decode()) for row, n in zip(gathered, np.ravel(sizes))]


def _flat(values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in values.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def _check_equal(what: dict[str, str], digests=(), configs=()) -> None:
    """A DistributedError naming the entries of `what` in which the processes differ: each
    process's value, its first 16 hex digits for the `digests`, the keys that differ for the
    `configs` (JSON objects)."""
    every = _allgather_strings(what)
    parts = []
    for key in what:
        if len({values[key] for values in every}) == 1:
            continue
        if key in configs:
            flat = [_flat(json.loads(values[key])) for values in every]
            names = sorted({k for f in flat for k in f if any(g.get(k) != f.get(k) for g in flat)})
            shown = ", ".join(f"{k} (" + ", ".join(f"process {i}: {f.get(k, '(not set)')!r}" for i, f in enumerate(flat))
                              + ")" for k in names[:6])
            parts.append(f"{key} differs in {shown}" + (f" and {len(names) - 6} more" if len(names) > 6 else ""))
        else:
            parts.append(f"{key}" + (" digests" if key in digests else "") + " differ: " + ", ".join(
                f"process {i} {values[key][:16] if key in digests else values[key]}" for i, values in enumerate(every)))
    if parts:
        raise DistributedError(f"the {len(every)} processes of this run disagree: {'; '.join(parts)}. Start every "
                               "process with the same config, motion data, ase_jax/jax versions and number of devices")


def check_agreement(config) -> None:
    """All processes run the same computation: config (all but the process id), motion data, jax
    version and number of local devices; a DistributedError naming what differs otherwise."""
    if not is_multiprocess():
        return
    from ase_jax.config.schema import to_dict

    values = to_dict(config)
    values["run"] = {k: v for k, v in values["run"].items() if k != "process_id"}
    _check_equal({"config": json.dumps(values, sort_keys=True, default=str), "motion data": dataset_digest(config),
                  "jax version": jax.__version__, "local devices": str(jax.local_device_count())},
                 digests=("motion data",), configs=("config",))


def check_same_state(tree) -> None:
    """All processes hold the same replicated leaves (the first device's copy of `tree`, e.g. the
    parameters and a task's frozen LLC) before training starts."""
    if not is_multiprocess():
        return
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(jax.device_get(tree)):
        digest.update(np.ascontiguousarray(np.asarray(leaf)[0]).tobytes())
    _check_equal({"initial parameters (e.g. a different --llc checkpoint or workdir contents)": digest.hexdigest()},
                 digests=("initial parameters (e.g. a different --llc checkpoint or workdir contents)",))


def gather_device_axis(tree):
    """A pmapped pytree with every process's devices: numpy leaves of shape (global devices, ...)
    in device order, from each process's local (local devices, ...) shards. All processes must call
    it (a collective). One allgather of all leaves as bytes, not one per leaf (each is a compile)."""
    from jax.experimental import multihost_utils

    leaves, treedef = jax.tree.flatten(jax.device_get(tree))
    leaves = [np.ascontiguousarray(np.asarray(leaf)) for leaf in leaves]
    if not is_multiprocess():
        return jax.tree.unflatten(treedef, leaves)
    blob = np.concatenate([leaf.reshape(-1).view(np.uint8) for leaf in leaves] or [np.zeros(0, np.uint8)])
    every = np.asarray(multihost_utils.process_allgather(blob))  # (processes, bytes)
    out, offset = [], 0
    for leaf in leaves:
        parts = [row[offset: offset + leaf.nbytes].view(leaf.dtype).reshape(leaf.shape) for row in every]
        out.append(np.concatenate(parts, axis=0))
        offset += leaf.nbytes
    return jax.tree.unflatten(treedef, out)


def any_process(flag: bool) -> bool:
    """Whether `flag` is true on any process of the run (all must call it: a collective); `flag`
    itself for a single process."""
    if not is_multiprocess():
        return bool(flag)
    from jax.experimental import multihost_utils

    return bool(np.any(np.asarray(multihost_utils.process_allgather(np.array([int(bool(flag))], np.int32)))))


def local_device_rows(num_global: int) -> slice:
    """The rows of a (global devices, ...) array that belong to this process's devices."""
    local = num_global // jax.process_count()
    return slice(jax.process_index() * local, (jax.process_index() + 1) * local)

