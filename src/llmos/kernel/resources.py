"""What a job asks for and what the machine has: cpus, gpus and memory.

Admission is plain arithmetic over these three numbers; the machine's capacity is read
once when the scheduler starts (or given on the command line) and the running jobs'
requests, read from the store, are subtracted from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from llmos.core.errors import UsageError


@dataclass(frozen=True)
class Resources:
    cpus: int = 1
    gpus: int = 0
    memory_mb: int = 0

    def __post_init__(self) -> None:
        if self.cpus < 1:
            raise UsageError(f"cpus must be >= 1 (got {self.cpus})")
        if self.gpus < 0 or self.memory_mb < 0:
            raise UsageError(f"gpus and memory must be >= 0 (got {self.gpus} gpus, {self.memory_mb} MB)")

    def fits_in(self, free: Free) -> bool:
        return self.cpus <= free.cpus and self.gpus <= free.gpus and self.memory_mb <= free.memory_mb

    def describe(self) -> str:
        parts = [f"{self.cpus} cpu{'s' if self.cpus != 1 else ''}"]
        if self.gpus:
            parts.append(f"{self.gpus} gpu{'s' if self.gpus != 1 else ''}")
        if self.memory_mb:
            parts.append(f"{self.memory_mb} MB")
        return ", ".join(parts)


@dataclass
class Free:
    """Capacity left; unlike `Resources` it may reach zero."""

    cpus: int
    gpus: int
    memory_mb: int

    def take(self, r: Resources) -> None:
        self.cpus -= r.cpus
        self.gpus -= r.gpus
        self.memory_mb -= r.memory_mb


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def _memory_mb() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20)
    except (ValueError, OSError, AttributeError):
        return 0


def _gpu_count() -> int:
    """NVIDIA GPUs the driver exposes, honouring CUDA_VISIBLE_DEVICES; no torch import."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    gpus = Path("/proc/driver/nvidia/gpus")
    return len(list(gpus.iterdir())) if gpus.is_dir() else 0


def machine_capacity(cpus: int | None = None, gpus: int | None = None, memory_mb: int | None = None) -> Free:
    """The machine's resources, each overridable (`llmos kernel start --cpus 1`)."""
    return Free(
        cpus=_cpu_count() if cpus is None else cpus,
        gpus=_gpu_count() if gpus is None else gpus,
        memory_mb=_memory_mb() if memory_mb is None else memory_mb,
    )
