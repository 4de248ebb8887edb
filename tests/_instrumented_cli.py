"""`python -m _instrumented_cli ARGS...`: the gancli CLI, as a process of a launched group, that
leaves what each process holds where the tests can compare it.

After training, every process writes OUT/rank-R.safetensors: its G and D tensors (``G.*``,
``D.*``) and, with ``GANCLI_TEST_SCALER=1``, the loss scale of a CPU ``torch.amp.GradScaler``
that this wrapper hands the trainer, so the fp16 loss-scaling path runs without a GPU.
"""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

import gancli.train.loop as loop
from gancli.cli import main

built: dict[str, torch.nn.Module] = {}
scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=2) if os.environ.get(
    "GANCLI_TEST_SCALER") == "1" else None


def _keep_networks(build_gan):
    @functools.wraps(build_gan)
    def wrapper(*args, **kwargs):
        gan, record = build_gan(*args, **kwargs)
        built.update(G=gan.generator, D=gan.discriminator)
        return gan, record

    return wrapper


loop.build_gan = _keep_networks(loop.build_gan)
if scaler is not None:
    loop.train = functools.partial(loop.train, scaler=scaler)


def _dump(out: Path) -> None:
    tensors = {f"{name}.{k}": v.detach().contiguous().clone() for name, module in built.items()
               for k, v in module.state_dict().items()}
    if scaler is not None:
        tensors["scale"] = torch.tensor([scaler.get_scale()])
    save_file(tensors, str(out / f"rank-{os.environ.get('RANK', '0')}.safetensors"))


if __name__ == "__main__":
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    if code == 0:
        _dump(Path(sys.argv[sys.argv.index("--out") + 1]))
    sys.exit(code)
