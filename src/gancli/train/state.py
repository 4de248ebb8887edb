"""Optimizer state as tensors + JSON, keyed by parameter name, and optimizers that follow a growing network.

Saved per network ``N`` ("G" or "D"): tensors ``state.opt.N.<parameter name>.<key>`` and,
in the JSON state, the param groups (hyperparameters and the names of their parameters)
and the non-tensor values. Matching by name (not by position) lets a network gain
parameters mid-run, and lets a checkpoint be restored into a network built at its phase.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


def parameter_names(module: nn.Module) -> dict[int, str]:
    return {id(p): name for name, p in module.named_parameters()}


def optimizer_state(
    optimizer: torch.optim.Optimizer, module: nn.Module, prefix: str
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    names = parameter_names(module)
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    groups = []
    for group in optimizer.param_groups:
        hyper = {k: v for k, v in group.items() if k != "params"}
        groups.append({**_jsonable(hyper), "params": [names[id(p)] for p in group["params"]]})
    for param, values in optimizer.state.items():
        name = names[id(param)]
        for key, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"{prefix}.{name}.{key}"] = value
            else:
                scalars.setdefault(name, {})[key] = value
    return tensors, {"param_groups": groups, "scalars": scalars}


def _jsonable(hyper: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in hyper.items():
        if isinstance(value, Tensor):
            value = value.item()
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, module: nn.Module, prefix: str, tensors: dict[str, Tensor], meta: dict[str, Any]
) -> None:
    """Restore state written by :func:`optimizer_state` into ``optimizer`` over ``module``'s parameters.

    Call it once the parameters are on their device and in their memory format: moments
    come back on the parameter's device with its strides (channels-last stays channels-last,
    so Adam keeps its multi-tensor path), and Adam's ``step`` counters stay on the CPU.
    Parameters the checkpoint does not know (layers added since) start with no state.
    """
    by_name = dict(module.named_parameters())
    names = parameter_names(module)
    known = {name for group in meta["param_groups"] for name in group["params"]}
    missing = sorted(known - set(by_name))
    if missing:
        raise KeyError(f"the checkpoint has optimizer state for parameters this model lacks: {missing[:3]}")
    _regroup(optimizer, meta["param_groups"], by_name)

    state: dict[str, dict[str, Any]] = {}
    head = prefix + "."
    for key, value in tensors.items():
        if key.startswith(head):
            name, _, item = key[len(head):].rpartition(".")
            state.setdefault(name, {})[item] = value
    for name, values in meta.get("scalars", {}).items():
        state.setdefault(name, {}).update(values)
    index = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            index[names[id(p)]] = len(index)
    groups = []
    for group in optimizer.param_groups:
        saved = {k: v for k, v in group.items() if k != "params"}
        saved["params"] = [index[names[id(p)]] for p in group["params"]]
        groups.append(saved)
    optimizer.load_state_dict({"state": {index[n]: v for n, v in state.items()}, "param_groups": groups})
    for param, values in optimizer.state.items():
        for key, value in values.items():
            if isinstance(value, Tensor) and value.shape == param.shape and value.stride() != param.stride():
                values[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _regroup(optimizer: torch.optim.Optimizer, saved_groups: list[dict[str, Any]], by_name: dict[str, nn.Parameter]) -> None:
    """Give ``optimizer`` the saved groups (membership and hyperparameters); parameters the
    checkpoint does not list go into one more group with the first group's settings."""
    template = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
    current = [p for group in optimizer.param_groups for p in group["params"]]
    placed: set[int] = set()
    groups = []
    for saved in saved_groups:
        params = [by_name[name] for name in saved["params"]]
        placed.update(id(p) for p in params)
        hyper = {k: (tuple(v) if k == "betas" else v) for k, v in saved.items() if k != "params"}
        groups.append({**template, **hyper, "params": params})
    rest = [p for p in current if id(p) not in placed]
    if rest:
        groups.append({**template, "params": rest})
    optimizer.param_groups.clear()
    optimizer.state.clear()
    for group in groups:
        optimizer.add_param_group(group)


def add_new_parameters(optimizer: torch.optim.Optimizer, module: nn.Module) -> int:
    """Put the trainable parameters of ``module`` that ``optimizer`` does not hold yet into a new
    group with the first group's settings (a network that grew); returns how many."""
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    new = [p for p in module.parameters() if p.requires_grad and id(p) not in held]
    if new:
        template = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
        optimizer.add_param_group({**template, "params": new})
    return len(new)
