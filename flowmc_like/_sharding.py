"""Chains sharded over devices: a one-axis `jax.sharding.Mesh` and the moves between host and mesh.

A run on several devices places every chain-batched array (kernel states, traces, the
training window) with ``NamedSharding(mesh, P("chains"))``: chain ``c`` lives on device
``c // (n_chains // n_devices)``. Everything else (model parameters, optimiser and
adaptation state, keys, ``data``) is replicated. The phases are jitted with these
shardings and XLA's SPMD partitioner does the rest: the local and global moves run on each
device's chains, and flow training is data parallel (each device holds a slice of every
minibatch; the compiler reduces the gradients).

On several hosts (``jax.distributed.initialize``) the mesh spans every process's devices;
each process builds its own chains' shards from the full host array it is given and gets the
full results back (`to_host` gathers across processes).

On the default device alone there is no mesh and every function here is the identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from flowmc_like._types import PyTree
from flowmc_like._validation import _describe

__all__ = ["CHAIN_AXIS", "ChainLayout", "check_devices", "check_divisible", "default_devices"]

CHAIN_AXIS = "chains"


def default_devices() -> tuple[jax.Device, ...]:
    """The devices a `Sampler` shards over when ``devices=None``.

    Every device of an accelerator backend (GPU, TPU), and every device of every process
    under ``jax.distributed``. On a single CPU process only the default device: extra CPU
    "devices" (``--xla_force_host_platform_device_count``, which some libraries set at
    import) split the same cores, so sharding over them costs compilation and buys nothing.
    """
    devices = tuple(jax.devices())
    if devices[0].platform == "cpu" and jax.process_count() == 1:
        return devices[:1]
    return devices


def check_devices(devices: Any) -> tuple[jax.Device, ...] | None:
    """Validate the ``devices`` argument of `Sampler`: None, or a non-empty sequence of devices."""
    if devices is None:
        return None
    if isinstance(devices, jax.Device):
        devices = (devices,)
    if isinstance(devices, str | bytes) or not isinstance(devices, Sequence | np.ndarray):
        raise TypeError(
            "Sampler: devices must be a sequence of jax devices (e.g. jax.devices()) or None; "
            f"got {_describe(devices)} (of type {type(devices).__name__})"
        )
    devices = tuple(np.ravel(np.asarray(devices, dtype=object)))
    if not devices:
        raise ValueError(
            "Sampler: devices is empty; expected at least one jax device, e.g. jax.devices(); "
            "got an empty sequence"
        )
    for device in devices:
        if not isinstance(device, jax.Device):
            raise TypeError(
                "Sampler: devices must hold jax devices (from jax.devices()); got an element "
                f"{_describe(device)} (of type {type(device).__name__})"
            )
    if len(set(devices)) != len(devices):
        raise ValueError(
            f"Sampler: devices must list each device once; got {list(devices)} (a device more "
            "than once)"
        )
    if len({device.platform for device in devices}) > 1:
        platforms = sorted({device.platform for device in devices})
        raise ValueError(
            f"Sampler: devices must be of one platform; got devices of platforms {platforms}"
        )
    return devices


def check_divisible(n_chains: int, n_devices: int) -> None:
    """Raise unless the chains split evenly over the devices."""
    if n_chains % n_devices:
        lower = n_chains - n_chains % n_devices
        raise ValueError(
            f"n_chains={n_chains} does not split evenly over {n_devices} devices; use a "
            f"multiple of {n_devices} (e.g. {lower or n_devices} or {lower + n_devices}), or "
            "pass devices= with a number of devices that divides n_chains "
            "(devices=jax.devices()[:1] runs on one device)"
        )


class ChainLayout:
    """Where a run's arrays live: one device (``mesh is None``) or chains sharded over a mesh.

    Args:
        devices: the devices to shard the chains over; ``None`` means `default_devices`.
        n_chains: the number of chains, a multiple of the number of devices.
    """

    def __init__(self, devices: Sequence[jax.Device] | None, n_chains: int) -> None:
        devices = default_devices() if devices is None else tuple(devices)
        check_divisible(n_chains, len(devices))
        self.n_devices = len(devices)
        # The default device alone runs the plain single-device program; any other device
        # set (even one other device) gets a mesh, so the run happens where it was asked to.
        is_default = len(devices) == 1 and devices[0] == jax.devices()[0]
        self.mesh: Mesh | None = None if is_default else Mesh(np.asarray(devices), (CHAIN_AXIS,))

    @property
    def is_sharded(self) -> bool:
        return self.mesh is not None

    @property
    def cache_key(self) -> tuple[int, ...]:
        """The mesh's device ids (empty for the default device): part of a program's identity."""
        return () if self.mesh is None else tuple(int(d.id) for d in self.mesh.devices.flat)

    @property
    def chains(self) -> NamedSharding | None:
        """Sharding of arrays whose leading axis is the chain axis."""
        return None if self.mesh is None else NamedSharding(self.mesh, PartitionSpec(CHAIN_AXIS))

    @property
    def replicated(self) -> NamedSharding | None:
        """Sharding of arrays every device holds whole."""
        return None if self.mesh is None else NamedSharding(self.mesh, PartitionSpec())

    def batch_sharding(self, batch_size: int) -> NamedSharding | None:
        """Sharding of ``(n_batches, batch_size, n_dim)`` minibatches: each device a slice.

        None (the compiler decides) without a mesh or when ``batch_size`` does not split
        evenly over the devices.
        """
        if self.mesh is None or batch_size % self.n_devices:
            return None
        return NamedSharding(self.mesh, PartitionSpec(None, CHAIN_AXIS))

    def put(self, tree: PyTree, sharding: Any) -> PyTree:
        """Host arrays (every process holds the full arrays) -> global arrays with ``sharding``.

        ``sharding`` is one sharding or a pytree prefix of ``tree`` of shardings. Each
        process only reads the rows its own devices hold. Without a mesh ``tree`` is
        returned unchanged.
        """
        if self.mesh is None:
            return tree
        shardings = jax.tree.broadcast(sharding, tree, is_leaf=_is_sharding)

        def put_leaf(leaf: Any, leaf_sharding: NamedSharding) -> jax.Array:
            if isinstance(leaf, jax.Array) and leaf.sharding == leaf_sharding:
                return leaf
            host = np.asarray(leaf)
            host = host.astype(jax.dtypes.canonicalize_dtype(host.dtype), copy=False)
            return jax.make_array_from_callback(host.shape, leaf_sharding, host.__getitem__)

        return jax.tree.map(put_leaf, tree, shardings)

    def to_host(self, tree: PyTree) -> PyTree:
        """Every leaf as a full numpy array on this process (gathered across processes)."""
        if self.mesh is None:
            return jax.device_get(tree)

        def get_leaf(leaf: Any) -> Any:
            if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
                return jax.device_get(leaf)
            if leaf.is_fully_replicated:
                return np.asarray(leaf.addressable_data(0))
            return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))

        return jax.tree.map(get_leaf, tree)


def _is_sharding(value: Any) -> bool:
    return value is None or isinstance(value, jax.sharding.Sharding)


def is_main_process() -> bool:
    """True on the process that writes files (process 0; the only one without jax.distributed)."""
    return jax.process_index() == 0
