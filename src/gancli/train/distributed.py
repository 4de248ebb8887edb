"""Collectives the trainer needs with several processes; every function is a no-op for one.

The trainer does not wrap G and D in DistributedDataParallel. It all-reduces the
gradients itself, once per optimizer step, after the last micro-batch's backward, as
stylegan2-ada's loop does. That choice makes every call of a network synchronised the
same way (``G.mapping(z)``, a path-length pass or a penalty through
``torch.autograd.grad`` included, which DDP does not support), needs no
``find_unused_parameters`` and no ``no_sync`` for gradient accumulation, and lets a
network gain parameters mid-run. The cost is that communication does not overlap the
backward pass, which matters little at the sizes GANs train at on a few GPUs.
"""
from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from gancli.errors import GancliError


def _dist():
    import torch.distributed as dist

    return dist


# gloo's worker thread lets go of a finished collective's tensors a moment after the caller has the
# result, and letting go of a tensor that Python knows takes the GIL. Once the interpreter is exiting,
# taking it ends that thread in the middle of C++ (std::terminate: SIGABRT). So the tensors of the
# latest collectives are kept here, and ``settle`` waits until gloo has let go of them.
_RECENT: deque = deque(maxlen=64)


def _held(*tensors: Tensor) -> None:
    _RECENT.extend(tensors)


def settle(timeout: float = 10.0) -> None:
    """Wait (releasing the GIL) until no collective holds a tensor any more; call it before leaving."""
    import time

    deadline = time.monotonic() + timeout
    while _RECENT and time.monotonic() < deadline:
        if _RECENT[0]._use_count() == 1:  # only our own reference is left
            _RECENT.popleft()
        else:
            time.sleep(0.001)
    _RECENT.clear()


def all_reduce_gradients(params: Sequence[torch.nn.Parameter], world: int) -> None:
    """Average the gradients of ``params`` over the processes, in one flattened all-reduce.

    A parameter without a gradient on some process counts as zero there; one that has no
    gradient on any process keeps none (an optimizer then leaves it and its state alone,
    as for the not-yet-faded-in layers of a growing network).
    """
    if world == 1 or not params:
        return
    device = params[0].device
    pieces = [
        p.grad.reshape(-1).float() if p.grad is not None else torch.zeros(p.numel(), device=device)
        for p in params
    ]
    present = torch.tensor([float(p.grad is not None) for p in params], device=device)
    flat = torch.cat(pieces + [present])
    _held(flat)
    _dist().all_reduce(flat)
    counts = flat[-len(params):]
    offset = 0
    for p, count in zip(params, counts.tolist()):
        n = p.numel()
        if count > 0:
            mean = flat[offset : offset + n].view(p.shape).div_(world).to(p.dtype)
            if p.grad is None:
                p.grad = torch.empty_like(p)
            p.grad.copy_(mean)
        offset += n


def broadcast_module(module: torch.nn.Module, world: int) -> None:
    """Give every process the main process's parameters and buffers (after a network grew:
    its new layers were initialised from each process's own random state)."""
    if world == 1:
        return
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            buffer = tensor.data if tensor.is_contiguous() else tensor.data.contiguous()
            _held(buffer)
            _dist().broadcast(buffer, src=0)
            if buffer is not tensor.data:
                tensor.data.copy_(buffer)


def max_flags(flags: Tensor, world: int) -> Tensor:
    """Element-wise maximum of an int32 flag vector over the processes (one small collective)."""
    if world > 1:
        _held(flags)
        _dist().all_reduce(flags, op=_dist().ReduceOp.MAX)
    return flags


def mean(value: Tensor, world: int) -> Tensor:
    """The mean of ``value`` over the processes."""
    if world == 1:
        return value
    out = value.detach().clone()
    _held(out)
    _dist().all_reduce(out)
    return out / world


def broadcast_text(text: str, world: int, device: torch.device, src: int = 0) -> str:
    """Process ``src``'s ``text`` on every process."""
    if world == 1:
        return text
    dist = _dist()
    data = text.encode("utf-8")
    length = torch.tensor([len(data)], dtype=torch.int64, device=device)
    _held(length)
    dist.broadcast(length, src=src)
    buffer = torch.zeros(int(length.item()), dtype=torch.uint8, device=device)
    _held(buffer)
    if dist.get_rank() == src and data:
        buffer.copy_(torch.tensor(list(data), dtype=torch.uint8))
    if len(buffer):
        dist.broadcast(buffer, src=src)
    return bytes(buffer.cpu().tolist()).decode("utf-8")


class PeerFailed(GancliError):
    """Another process failed; this one stops with its message."""


@dataclass(frozen=True)
class Agreement:
    nonfinite: bool  # some process saw a non-finite loss
    stop: bool  # some process got a stop signal


def describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, GancliError) else f"{type(exc).__name__}: {exc}"


class Consensus:
    """The flags every process must see alike before any of them branches.

    ``agree`` is a collective: every process calls it at the same points of the loop (before
    each gradient all-reduce, each reduction a plugin asks for, each broadcast or gather and
    at the end of each iteration). A process that fails calls ``fail`` instead, which meets
    the others at whatever agreement they wait in; all of them then raise.
    """

    FLAGS = 3  # failed (world - rank of the lowest failing process), non-finite, stop

    def __init__(self, world: int, rank: int, device: torch.device) -> None:
        self.world, self.rank, self.device = world, rank, device
        self.told = False  # a failure was agreed on: no more collectives

    def agree(self, *, nonfinite: bool | Tensor = False, stop: bool = False) -> Agreement:
        if self.world == 1:
            return Agreement(nonfinite=bool(nonfinite), stop=stop)
        flags = self._exchange(failed=False, nonfinite=nonfinite, stop=stop)
        if flags[0]:
            src = self.world - flags[0]
            message = broadcast_text("", self.world, self.device, src=src)
            self.told = True
            raise PeerFailed(f"process {src} failed: {message}")
        return Agreement(nonfinite=bool(flags[1]), stop=bool(flags[2]))

    def fail(self, exc: BaseException) -> None:
        """Tell the other processes that this one failed with ``exc`` (once); the caller re-raises."""
        if self.world == 1 or self.told or isinstance(exc, PeerFailed):
            return
        self.told = True
        try:
            flags = self._exchange(failed=True, nonfinite=False, stop=False)
            src = self.world - flags[0]  # the lowest failing process speaks for all
            broadcast_text(describe(exc) if src == self.rank else "", self.world, self.device, src=src)
        except Exception:  # the process group itself broke (a peer died): the launcher stops the rest
            pass

    def _exchange(self, *, failed: bool, nonfinite: bool | Tensor, stop: bool) -> list[int]:
        flags = torch.zeros(self.FLAGS, dtype=torch.int32, device=self.device)
        if failed:
            flags[0] = self.world - self.rank
        flags[1] = nonfinite.to(torch.int32) if isinstance(nonfinite, Tensor) else int(nonfinite)
        flags[2] = int(stop)
        return max_flags(flags, self.world).tolist()


def _encode(tensors: dict[str, Tensor]) -> tuple[bytes, Tensor]:
    layout = {name: [str(t.dtype).removeprefix("torch."), list(t.shape)] for name, t in tensors.items()}
    chunks = [t.detach().contiguous().cpu().reshape(-1).view(torch.uint8) for t in tensors.values()]
    payload = torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.uint8)
    return json.dumps(layout).encode("utf-8"), payload


def _decode(layout: bytes, payload: Tensor) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    offset = 0
    for name, (dtype_name, shape) in json.loads(layout.decode("utf-8")).items():
        dtype = getattr(torch, dtype_name)
        count = 1
        for d in shape:
            count *= d
        nbytes = count * torch.empty((), dtype=dtype).element_size()
        out[name] = payload[offset : offset + nbytes].clone().view(dtype).reshape(shape)
        offset += nbytes
    return out


def gather_tensor_dicts(tensors: dict[str, Tensor], world: int, device: torch.device) -> list[dict[str, Tensor]]:
    """Every process's ``tensors`` (any names, shapes and dtypes), on every process, in rank order.

    Used for state that differs between processes (random generators, objective state such
    as labelled pools or running means); CPU tensors come back.
    """
    if world == 1:
        return [{k: v.detach().cpu() for k, v in tensors.items()}]
    dist = _dist()
    layout, payload = _encode(tensors)
    sizes = torch.tensor([len(layout), payload.numel()], dtype=torch.int64, device=device)
    all_sizes = [torch.zeros_like(sizes) for _ in range(world)]
    _held(sizes, *all_sizes)
    dist.all_gather(all_sizes, sizes)
    longest = torch.stack(all_sizes).max(dim=0).values.tolist()
    out = []
    for blob, length in ((torch.tensor(list(layout), dtype=torch.uint8), longest[0]), (payload, longest[1])):
        padded = torch.zeros(int(length), dtype=torch.uint8, device=device)
        padded[: blob.numel()] = blob.to(device)
        gathered = [torch.zeros_like(padded) for _ in range(world)]
        _held(padded, *gathered)
        dist.all_gather(gathered, padded)
        out.append([g.cpu() for g in gathered])
    layouts, payloads = out
    result = []
    for rank in range(world):
        n_layout, n_payload = all_sizes[rank].tolist()
        result.append(_decode(bytes(layouts[rank][:n_layout].tolist()), payloads[rank][:n_payload]))
    return result
