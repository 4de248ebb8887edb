"""Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) ‖ p(y))) averaged over splits."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gancli.metrics._arrays import as_float64_matrix


class SplitScore(NamedTuple):
    mean: float
    std: float
    splits: int


def inception_score(logits, *, splits: int = 10, shuffle: bool = True, seed: int = 2020) -> SplitScore:
    """Score from classifier logits (softmax is taken here), mean and population std over `splits`.

    For the FID Inception network pass the 1008 logits *without* the fc bias: that is what the reference
    TF code (improved-gan: softmax(pool3 · W)) and torch-fidelity ('logits_unbiased') score, all 1008
    classes included. Samples are shuffled with numpy RandomState(seed) before splitting, like
    torch-fidelity, so that a sorted input (e.g. class-conditional samples) does not bias the splits.
    """
    matrix = as_float64_matrix(logits, "logits")
    count = matrix.shape[0]
    if count < splits:
        raise ValueError(f"need at least one sample per split: {count} samples, {splits} splits")
    if shuffle:
        matrix = matrix[np.random.RandomState(seed).permutation(count)]
    log_p = matrix - _logsumexp_rows(matrix)
    p = np.exp(log_p)
    scores = []
    for index in range(splits):
        rows = slice(index * count // splits, (index + 1) * count // splits)
        p_split, log_p_split = p[rows], log_p[rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            # 0 · log 0 = 0: a class no sample in the split predicts adds nothing to the KL.
            log_marginal = np.log(p_split.mean(axis=0, keepdims=True))
            terms = np.where(p_split > 0, p_split * (log_p_split - log_marginal), 0.0)
        kl = terms.sum(axis=1)
        scores.append(float(np.exp(kl.mean())))
    return SplitScore(float(np.mean(scores)), float(np.std(scores)), splits)


def _logsumexp_rows(matrix: np.ndarray) -> np.ndarray:
    peak = matrix.max(axis=1, keepdims=True)
    return peak + np.log(np.exp(matrix - peak).sum(axis=1, keepdims=True))
