"""Style mixing regularization: the mixing function, the crossover draws, and what the objective generates."""
from __future__ import annotations

import pytest
import torch

from gancli_plugin_stylegan.mixing import draw_crossovers, mix_styles
from stylegan_testkit import build_tiny, make_step, real_batch


def two_ws(n: int = 5, layers: int = 8, dim: int = 3):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, layers, dim, generator=g), torch.randn(n, layers, dim, generator=g)


@pytest.mark.parametrize("k", [0, 1, 4, 7, 8, 20])
def test_crossover_at_k_takes_w2_exactly_from_layer_k_on(k):
    w1, w2 = two_ws()
    mixed = mix_styles(w1, w2, k)
    assert torch.equal(mixed[:, :k], w1[:, :k])
    assert torch.equal(mixed[:, k:], w2[:, k:])


def test_crossover_per_example():
    w1, w2 = two_ws()
    crossover = torch.tensor([0, 2, 5, 8, 3])
    mixed = mix_styles(w1, w2, crossover)
    for n, k in enumerate(crossover.tolist()):
        assert torch.equal(mixed[n, :k], w1[n, :k]) and torch.equal(mixed[n, k:], w2[n, k:])
    with pytest.raises(ValueError):
        mix_styles(w1, w2[:, :4], 2)


def test_crossover_draws_follow_the_probability_and_cover_every_layer():
    G, D = build_tiny().generator, build_tiny().discriminator
    n = 4000
    s = make_step(G, D, None, batch_size=n, device="cpu")
    crossover = draw_crossovers(s, layers=8, prob=0.9, no_mix=8)
    mixed = crossover < 8
    assert abs(mixed.float().mean().item() - 0.9) < 0.02
    assert set(crossover[mixed].tolist()) == set(range(1, 8))  # uniform over 1 … L − 1, never 0
    counts = torch.bincount(crossover[mixed], minlength=8)[1:].float()
    assert counts.min() / counts.max() > 0.8
    every = draw_crossovers(make_step(G, D, None, batch_size=64, device="cpu"), layers=4, prob=1.0, no_mix=8)
    assert every.min() >= 1 and every.max() <= 3
    never = draw_crossovers(make_step(G, D, None, batch_size=64, device="cpu"), layers=4, prob=0.0, no_mix=8)
    assert torch.equal(never, torch.full((64,), 8))


def test_crossover_draws_do_not_depend_on_how_the_batch_is_split():
    """Per-example draws: two processes with half a batch each get the halves of one process's draw."""
    G, D = build_tiny().generator, build_tiny().discriminator
    whole = draw_crossovers(make_step(G, D, None, batch_size=16, device="cpu"), layers=8, prob=0.9, no_mix=8)
    halves = [
        draw_crossovers(make_step(G, D, None, batch_size=8, device="cpu", rank=r, world_size=2),
                        layers=8, prob=0.9, no_mix=8)
        for r in range(2)
    ]
    assert torch.equal(torch.cat(halves), whole)


def test_objective_generates_from_two_latents_with_the_drawn_crossover():
    gan = build_tiny(style_mixing_prob=1.0)
    G, D = gan.generator.train(), gan.discriminator  # noise strengths start at 0: random noise adds nothing
    real = real_batch()
    fake = gan.objective.generate(make_step(G, D, real, seed=3))
    # the same Step draws, replayed by hand: z₁, z₂, then the crossovers
    s = make_step(G, D, real, seed=3)
    z1, z2 = s.latents(), s.latents()
    crossover = draw_crossovers(s, layers=G.num_ws, prob=1.0, no_mix=G.num_ws)
    with torch.no_grad():
        w1, w2 = G.mapping(z1, update_w_avg=False), G.mapping(z2, update_w_avg=False)
        expected = G.synthesis(mix_styles(w1, w2, crossover), noise_mode="none")
        unmixed = G.synthesis(w1, noise_mode="none")
    assert torch.all(crossover < G.num_ws)
    assert torch.allclose(fake, expected, atol=1e-6)
    assert not torch.allclose(fake, unmixed, atol=1e-4)


def test_only_the_first_latent_moves_w_avg():
    gan = build_tiny()
    G, D = gan.generator.train(), gan.discriminator
    s = make_step(G, D, real_batch(), seed=5)
    gan.objective.generate(s)
    replay = make_step(G, D, real_batch(), seed=5)
    z1 = replay.latents()
    with torch.no_grad():
        w1 = G.mapping(z1, update_w_avg=False)[:, 0]
    assert torch.allclose(G.w_avg, (1 - 0.995) * w1.mean(dim=0), atol=1e-7)  # w_avg started at 0
