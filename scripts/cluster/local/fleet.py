"""The simulated nodes and the storage of the local cluster.

Nodes are ordinary v1 Node objects annotated for kwok, which then keeps their status and
leases as a kubelet would, and marks pods scheduled on them Running/Ready. No container runs.

A GPU pool is simulated the way real ones look to the scheduler: an extended resource
`nvidia.com/gpu`, the taint GPU pools carry (`nvidia.com/gpu=present:NoSchedule`), and the labels
that the project's overlays select GPU nodes by (NVIDIA GPU feature discovery's
`nvidia.com/gpu.present`/`nvidia.com/gpu.product`, Alibaba ACK's accelerator labels).

Storage: a default StorageClass without a provisioner and a pool of pre-created volumes of that
class, so that PersistentVolumeClaims (the model cache) bind through the real PV controller.
Nothing is ever mounted: the volumes' hostPath is never touched.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KWOK_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
GPU_LABELS = {
    "nvidia.com/gpu.present": "true",
    "nvidia.com/gpu.product": "NVIDIA-L4",
    "aliyun.accelerator/nvidia_name": "NVIDIA-A10",
    "ack.node.gpu.schedule": "default",
}
STORAGE_CLASS = "simulated-local"
# Classes the project's overlays and ci scenarios name (values/production.yaml, ci/sd-model-cache):
# each gets pre-created volumes too, so their claims bind like on the clusters they describe.
NAMED_CLASSES = ("shared-rwx", "standard-rwx")
VOLUME_SIZE = "500Gi"


@dataclass(frozen=True)
class Pool:
    """A group of identical simulated nodes."""

    name: str
    count: int
    cpu: str
    memory: str
    gpus: int = 0

    @property
    def is_gpu(self) -> bool:
        return self.gpus > 0


@dataclass(frozen=True)
class Fleet:
    pools: tuple[Pool, ...]
    volumes: int

    def node_names(self, pool: Pool) -> list[str]:
        return [f"sim-{pool.name}-{index}" for index in range(1, pool.count + 1)]


# `make up`: what the local cluster promises, sized so that values/dev.yaml fits.
UP_FLEET = Fleet(pools=(Pool("cpu", 3, "16", "64Gi"), Pool("gpu", 1, "32", "128Gi", gpus=4)),
                 volumes=8)


def node(name: str, pool: Pool, index: int) -> dict[str, Any]:
    capacity = {"cpu": pool.cpu, "memory": pool.memory, "pods": "110",
                "ephemeral-storage": "200Gi"}
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": f"simulated-{pool.name}",
        "ray-platform.io/simulated": "true",
        "type": "kwok",
    }
    spec: dict[str, Any] = {
        # Pod IPs for this node's pods: a /24 of its own, inside 127.0.0.0/8.
        "podCIDR": f"127.{100 + index // 256}.{index % 256}.0/24",
    }
    if pool.is_gpu:
        capacity["nvidia.com/gpu"] = str(pool.gpus)
        labels.update(GPU_LABELS)
        spec["taints"] = [GPU_TAINT]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": dict(KWOK_ANNOTATION)},
        "spec": spec,
        "status": {"capacity": capacity, "allocatable": dict(capacity)},
    }


def nodes(fleet: Fleet) -> list[dict[str, Any]]:
    objects, index = [], 0
    for pool in fleet.pools:
        for name in fleet.node_names(pool):
            index += 1
            objects.append(node(name, pool, index))
    return objects


def storage_class(name: str, default: bool) -> dict[str, Any]:
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name, "annotations": annotations},
            "provisioner": "kubernetes.io/no-provisioner", "reclaimPolicy": "Retain",
            "volumeBindingMode": "Immediate"}


def volume(storage_class_name: str, index: int) -> dict[str, Any]:
    name = f"simulated-{storage_class_name}-{index}"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {"ray-platform.io/simulated": "true"}},
        "spec": {
            "storageClassName": storage_class_name,
            "capacity": {"storage": VOLUME_SIZE},
            "accessModes": ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            # Never mounted: no kubelet runs. The path only satisfies the API.
            "hostPath": {"path": f"/nonexistent/{name}"},
        },
    }


def storage(fleet: Fleet) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for name in (STORAGE_CLASS, *NAMED_CLASSES):
        objects.append(storage_class(name, default=name == STORAGE_CLASS))
        objects += [volume(name, index) for index in range(1, fleet.volumes + 1)]
    return objects


def all_objects(fleet: Fleet) -> list[dict[str, Any]]:
    return nodes(fleet) + storage(fleet)
