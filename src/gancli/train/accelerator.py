"""Device placement, precision and processes: the Accelerator a run trains with, and what the number of
processes implies for the batch and for BatchNorm."""
from __future__ import annotations

import os
import sys
from typing import Optional

import torch

from gancli.config import RunConfig
from gancli.errors import GancliError


def cpu_has_native_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def make_accelerator(precision: Optional[str], *, log_with: Optional[list[str]] = None, project_dir=None):
    """An Accelerator for device placement, autocast, the fp16 GradScaler and the process group.

    ``precision`` None takes the launcher's setting (``accelerate launch --mixed_precision``).
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    # the state is a process-wide singleton; forget a previous in-process run's precision
    AcceleratorState._reset_state()
    # launched as several processes (torchrun, accelerate launch --multi_gpu) on a machine
    # without CUDA: accelerate only forms a gloo process group when told it is on the CPU
    several_cpu_processes = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    extra = {"cpu": True} if several_cpu_processes else {}
    if precision == "fp16" and not torch.cuda.is_available():
        raise GancliError("--precision fp16 needs a CUDA GPU; on the CPU use --precision bf16 or no")
    if log_with:
        extra.update(log_with=list(log_with), project_dir=str(project_dir))
    accelerator = Accelerator(mixed_precision=precision, **extra)
    effective = str(accelerator.mixed_precision)
    if effective == "fp16" and accelerator.device.type == "cpu":
        raise GancliError("mixed precision fp16 (from the launcher) needs a CUDA GPU; on the CPU use bf16 or no")
    if effective == "bf16" and accelerator.device.type == "cpu" and not cpu_has_native_bf16():
        print(
            "warning: this CPU has no native bf16 (AVX512-BF16 or AMX); bf16 convolutions are emulated "
            "and usually slower than fp32 here; --precision no is likely faster",
            file=sys.stderr,
        )
    return accelerator


def check_batch(batch: int, world: int, accumulate: int, what: str) -> None:
    if batch % (world * accumulate):
        raise GancliError(
            f"{what} {batch} must be divisible by processes × train.accumulate = {world} × {accumulate}"
        )


def maybe_sync_batchnorm(run: RunConfig, objective, G, D, world: int, device: torch.device):
    """Cross-replica BatchNorm when asked for (train.sync_batchnorm) or when the family asks for it."""
    from gancli.nn.norms import has_batch_norm

    wanted = run.train.sync_batchnorm
    if wanted is None:
        wanted = bool(getattr(objective, "sync_batchnorm", False))
    if not wanted or world == 1 or not (has_batch_norm(G) or has_batch_norm(D)):
        return G, D
    if device.type != "cuda":
        if run.train.sync_batchnorm:
            raise GancliError(
                "train.sync_batchnorm needs CUDA processes (PyTorch's SyncBatchNorm runs on GPUs only); "
                "drop it to let each process normalise with its own batch"
            )
        print("note: BatchNorm is not synchronized across CPU processes; each normalises with its own batch",
              file=sys.stderr)
        return G, D
    convert = torch.nn.SyncBatchNorm.convert_sync_batchnorm
    return convert(G), convert(D)
