"""A multi-host run, simulated on one machine: 2 processes with 2 CPU devices each.

    python docs/examples/multihost_cpu.py

starts the two processes itself (each is this script with ``--process-id``). On a real
cluster you start one process per host (or let SLURM / Kubernetes / Cloud TPU do it) and
call ``jax.distributed.initialize()`` without arguments; everything after that line is the
same. Every process runs the same program: it passes the same key and the same full
``initial_position``, its own devices take their block of chains, and each process gets the
full result back, which process 0 summarises.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys

N_PROCESSES = 2
DEVICES_PER_PROCESS = 2
N_CHAINS = 16
SCHEDULE = dict(n_training_loops=10, n_production_loops=10)
if os.environ.get("FLOWMC_LIKE_EXAMPLE_QUICK") == "1":  # the test suite's small settings
    SCHEDULE = dict(n_training_loops=4, n_production_loops=4, n_local_steps=25)


def log_prob(x):
    """Two well-separated Gaussian modes with weights 0.3 and 0.7; x: (2,) -> scalar."""
    import jax.numpy as jnp

    left = jnp.log(0.3) - 0.5 * jnp.sum((x + 3.0) ** 2)
    right = jnp.log(0.7) - 0.5 * jnp.sum((x - 3.0) ** 2)
    return jnp.logaddexp(left, right)


def run_process(process_id: int, port: int) -> None:
    """One of the processes: join the others, then run the sampler over every device."""
    import jax

    jax.config.update("jax_num_cpu_devices", DEVICES_PER_PROCESS)  # simulated devices
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=N_PROCESSES,
        process_id=process_id,
    )
    import numpy as np

    import flowmc_like as fm

    # Every process builds the same full initial position; each reads only its own chains.
    x0 = jax.random.uniform(jax.random.key(1), (N_CHAINS, 2), minval=-6.0, maxval=6.0)
    sampler = fm.Sampler(
        log_prob,
        n_dim=2,
        n_chains=N_CHAINS,
        devices=jax.devices(),  # all 4 devices of both processes (the default)
        progress_bar=False,
        **SCHEDULE,
    )
    result = sampler.run(jax.random.key(0), x0)
    if jax.process_index() == 0:
        weight = float(np.mean(result.samples[..., 0] > 0))
        print(f"process 0 of {jax.process_count()}, {len(jax.devices())} devices in all")
        print(f"draws {result.samples.shape}, weight of the right mode {weight:.3f} (exact 0.7)")
        print(f"global acceptance {np.mean(result.global_acceptance):.2f}")
        print(result.to_arviz().posterior)
    jax.distributed.shutdown()


def launch() -> int:
    """Start every process on this machine and wait for them; the worst exit code."""
    with socket.socket() as probe:  # a free port for the coordinator
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    processes = [
        subprocess.Popen([sys.executable, __file__, "--process-id", str(i), "--port", str(port)])
        for i in range(N_PROCESSES)
    ]
    return max(process.wait() for process in processes)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--process-id", type=int, default=None)
    parser.add_argument("--port", type=int, default=None)
    arguments = parser.parse_args()
    if arguments.process_id is None:
        sys.exit(launch())
    run_process(arguments.process_id, arguments.port)
