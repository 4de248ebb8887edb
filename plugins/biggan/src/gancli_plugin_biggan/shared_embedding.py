"""G's shared class embedding, read by class index or by a mixture of classes.

BigGAN-PyTorch keeps one ``nn.Embedding`` named ``shared`` whose output feeds every
conditional BatchNorm (``BigGAN.py``: ``self.shared = nn.Embedding(n_classes, shared_dim)``,
without spectral norm: "applying SN to G's embedding seems to randomly cripple G"). Its
``G_D`` wrapper embeds the labels outside ``G.forward`` so that "class-wise interpolation" is
a walk between embedding vectors; here the same is reached by passing class weights: the
embedding of a weighted mixture is the weighted sum of the class embeddings (the lecture's
"dog-ball" is 0.5·dog + 0.5·ball).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def class_vector(shared: nn.Embedding, y: Tensor) -> Tensor:
    """(N, shared_dim) embeddings for class indices y (N,) or class weights y (N, num_classes).

    A one-hot weight row gives exactly the indexed embedding: 1·e_k plus zeros is e_k in
    floating point, so the weighted sum is computed as a plain sum of products.
    """
    if y.dim() == 1 and not y.dtype.is_floating_point:
        return shared(y)
    if y.dim() == 2 and y.dtype.is_floating_point:
        if y.shape[1] != shared.num_embeddings:
            raise ValueError(f"class weights must have {shared.num_embeddings} columns, got shape {tuple(y.shape)}")
        weights = y.to(shared.weight.dtype)
        return (weights[:, :, None] * shared.weight[None]).sum(dim=1)
    raise ValueError(
        f"y must be class indices of shape (N,) or float class weights of shape (N, {shared.num_embeddings}), "
        f"got {y.dtype} {tuple(y.shape)}"
    )


def check_labels(y, batch: int) -> Tensor:
    if y is None:
        raise ValueError("this class-conditional BigGAN generator needs class labels y")
    if not isinstance(y, Tensor):
        y = torch.as_tensor(y)
    if y.shape[0] != batch:
        raise ValueError(f"{batch} latents but {y.shape[0]} labels")
    return y
