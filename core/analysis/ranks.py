"""torch.distributed for ``rcnn-lens analyze`` under torchrun, as torchvision's detection references
set it up (``references/detection/utils.py`` ``init_distributed_mode``)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class Ranks:
    """torch.distributed as torchvision's references/detection/utils.py init_distributed_mode sets
    it up: RANK/WORLD_SIZE/LOCAL_RANK from torchrun, NCCL on GPUs, gloo on CPU."""

    rank: int = 0
    world: int = 1
    local: int = 0
    active: bool = False

    @classmethod
    def from_env(cls, device: str | None) -> Ranks:
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            return cls()
        import torch
        import torch.distributed as dist

        # The model stack first: torchvision imports torch._dynamo, and importing that after
        # init_process_group pins the default group, so destroy_process_group would leave gloo's
        # worker threads running into interpreter shutdown, where one of them releases the last
        # all_gather's tensors without the GIL: std::terminate, SIGABRT at exit (1 run in ~20).
        import torchvision.models.detection  # noqa: F401

        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", 0))
        cuda = (device or "cpu").startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        if cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if cuda else "gloo", init_method="env://", world_size=world, rank=rank)
        dist.barrier()
        return cls(rank, world, local, True)

    def device(self, device: str | None) -> str | None:
        if self.active and device in ("cuda", "auto"):
            import torch

            if torch.cuda.is_available():
                return f"cuda:{self.local}"
        return device

    def all_gather(self, obj) -> list:
        if not self.active:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def gather(self, obj) -> list | None:
        if not self.active:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world if self.rank == 0 else None
        dist.gather_object(obj, out, dst=0)
        return out

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def close(self, sync: bool = True) -> None:
        """Destroy the group (gloo's threads are joined); with ``sync``, after a barrier, so that
        no rank tears down while another still waits on its last collective. A rank that failed
        or was interrupted closes without it (its peers may be elsewhere)."""
        if self.active:
            import torch.distributed as dist

            try:
                if sync:
                    dist.barrier()
            finally:
                dist.destroy_process_group()
                self.active = False
