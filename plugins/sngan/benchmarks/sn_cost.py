"""What spectral normalization costs per training step: the same networks with and without it.

Each case builds a family's networks twice, once as configured and once with
``g_spectral_norm`` and ``d_spectral_norm`` off, and runs the objective's phases (D steps,
then the G step) on random data, one Adam step per repeat, the way the trainer does on one
process. Arms take turns step by step, so a load change on a shared machine hits both
alike; the process CPU time of each step is recorded and the median reported, on the
number of threads given (default 1, so that other work on the machine matters less).

    python plugins/sngan/benchmarks/sn_cost.py --steps 6 --threads 1
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from gancli.data.spec import DataSpec
from gancli.objective import Step
from gancli_plugin_sngan.config import SAGANConfig, SNGANConfig
from gancli_plugin_sngan.model import build_sagan, build_sngan

FAMILIES = {"sngan": (SNGANConfig, build_sngan), "sagan": (SAGANConfig, build_sagan)}

CASES = {
    # name: (family, settings, channels, batch)
    "sngan recipe (fashion-mnist)": ("sngan", {"g_ch": 8, "d_ch": 16, "n_critic": 1}, 1, 64),
    "sagan recipe (fashion-mnist)": ("sagan", {"g_ch": 8, "d_ch": 16, "n_critic": 1}, 1, 64),
    "sngan paper (cifar-10, n_critic 5)": ("sngan", {}, 3, 64),
    "sagan paper widths (cifar-10)": ("sagan", {}, 3, 64),
}


def _build(family: str, settings: dict, channels: int, spectral_norm: bool):
    config_model, build = FAMILIES[family]
    sn = {} if spectral_norm else {"g_spectral_norm": False, "d_spectral_norm": False}
    config = config_model.model_validate({**settings, **sn, "conditional": True})
    spec = DataSpec(kind="image", channels=channels, resolution=32, num_classes=10, name="random")
    torch.manual_seed(0)
    gan = build(config, spec)
    G, D = gan.generator.to(memory_format=torch.channels_last), gan.discriminator.to(memory_format=torch.channels_last)
    opt_g, opt_d = gan.objective.optimizers(G, D)
    return gan, {"G": opt_g, "D": opt_d}, spec


def _iteration(gan, optimizers, spec, batch: int, step: int) -> None:
    G, D = gan.generator, gan.discriminator
    cache: dict = {}
    for index, phase in enumerate(gan.objective.phases()):
        repeats = phase.times(step)
        for repeat in range(repeats):
            real = None
            labels = None
            if phase.real != "none":
                real = torch.rand(batch, *spec.shape).mul_(2).sub_(1).contiguous(memory_format=torch.channels_last)
                labels = torch.randint(0, spec.num_classes, (batch,))
            s = Step(index=step, real=real, labels=labels, G=G, D=D, z_dim=G.z_dim, num_classes=G.num_classes,
                     phase=phase.name, phase_index=index, repeat=repeat, repeats=repeats, batch_size=batch,
                     device="cpu", cache=cache)
            module, optimizer = (G, optimizers["G"]) if phase.network == "G" else (D, optimizers["D"])
            if phase.network == "G":
                D.requires_grad_(False)
            optimizer.zero_grad(set_to_none=True)
            phase.loss(s)["loss"].backward()
            D.requires_grad_(True)
            optimizer.step()


def measure(name: str, steps: int, warmup: int = 1) -> dict:
    family, settings, channels, batch = CASES[name]
    arms = {sn: _build(family, settings, channels, sn) for sn in (True, False)}
    times: dict[bool, list[float]] = {True: [], False: []}
    for step in range(warmup + steps):
        for sn, (gan, optimizers, spec) in arms.items():
            t0 = time.process_time()
            _iteration(gan, optimizers, spec, batch, step)
            if step >= warmup:
                times[sn].append(time.process_time() - t0)
    with_sn, without = statistics.median(times[True]), statistics.median(times[False])
    return {
        "case": name, "batch": batch, "steps": steps,
        "cpu_s_per_step_with_sn": round(with_sn, 3), "cpu_s_per_step_without_sn": round(without, 3),
        "steps_per_cpu_s_with_sn": round(1 / with_sn, 3), "steps_per_cpu_s_without_sn": round(1 / without, 3),
        "sn_overhead": f"{100 * (with_sn / without - 1):+.1f}%",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="*", default=list(CASES), help="case names (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.only:
        print(json.dumps({**measure(name, args.steps), "threads": args.threads}), flush=True)


if __name__ == "__main__":
    main()
