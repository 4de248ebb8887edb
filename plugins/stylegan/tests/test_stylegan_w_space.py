"""The W-space generator protocol: mapping, truncation towards w_avg, the cutoff, noise modes (stylegan and stylegan2)."""
from __future__ import annotations

import pytest
import torch

from stylegan_testkit import FAMILIES, build_tiny, randomize_noise_strengths


@pytest.fixture(params=FAMILIES)
def family(request):
    return request.param


@pytest.fixture()
def G(family):
    G = build_tiny(family=family).generator.eval()
    randomize_noise_strengths(G)
    with torch.no_grad():  # a w_avg away from 0, as after training
        G.mapping.w_avg.copy_(torch.randn(G.w_dim, generator=torch.Generator().manual_seed(7)))
    return G


def latents(n: int = 6, z_dim: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def test_protocol_attributes(family):
    G = build_tiny(resolution=64, family=family).generator
    assert G.truncation_space == "w"
    assert G.num_ws == 10 and G.w_dim == 8 and G.z_dim == 8 and G.num_classes == 0
    assert G.layer_resolutions == [4, 4, 8, 8, 16, 16, 32, 32, 64, 64]
    assert "mapping.w_avg" in dict(G.named_buffers()) and G.w_avg is G.mapping.w_avg
    w = G.mapping(latents())
    assert w.shape == (6, 10, 8)
    assert torch.equal(w, w[:, :1].expand_as(w))  # one w broadcast to every layer
    assert G.synthesis(w).shape == (6, 1, 64, 64)


def test_psi_zero_gives_w_avg_and_one_image_for_every_seed(G):
    z = torch.cat([latents(3, seed=s) for s in range(4)])
    w = G.mapping(z, psi=0.0)
    assert torch.equal(w, G.w_avg.expand_as(w))
    images = G(z, truncation=0.0, noise_mode="none")
    assert torch.equal(images, images[:1].expand_as(images))
    assert images.std() > 0  # not trivially constant: the average image itself has structure


def test_psi_one_leaves_w_unchanged_and_psi_interpolates(G):
    z = latents()
    w = G.mapping(z)
    assert torch.equal(G.mapping(z, psi=1.0), w)
    half = G.mapping(z, psi=0.5)
    assert torch.allclose(half, G.w_avg + 0.5 * (w - G.w_avg), atol=1e-6)
    assert torch.allclose(G.mapping(z, psi=0.7), G.w_avg + 0.7 * (w - G.w_avg), atol=1e-6)


@pytest.mark.parametrize("cutoff", [0, 1, 3, 8])
def test_cutoff_truncates_only_the_first_layers(G, cutoff):
    z = latents()
    w = G.mapping(z)
    truncated = G.mapping(z, psi=0.0, cutoff=cutoff)
    assert torch.equal(truncated[:, :cutoff], G.w_avg.expand(6, cutoff, -1))
    assert torch.equal(truncated[:, cutoff:], w[:, cutoff:])


def test_forward_is_mapping_then_synthesis(G):
    z = latents()
    expected = G.synthesis(G.mapping(z, psi=0.6, cutoff=4), noise_mode="const")
    assert torch.equal(G(z, truncation=0.6, truncation_cutoff=4, noise_mode="const"), expected)


def test_noise_modes(G):
    w = G.mapping(latents())
    const = G.synthesis(w, noise_mode="const")
    assert torch.equal(const, G.synthesis(w, noise_mode="const"))  # fixed by the buffers
    none = G.synthesis(w, noise_mode="none")
    assert not torch.allclose(const, none, atol=1e-4)  # the noise matters at these strengths
    torch.manual_seed(0)
    random_a = G.synthesis(w, noise_mode="random")
    random_b = G.synthesis(w, noise_mode="random")
    torch.manual_seed(0)
    assert torch.equal(G.synthesis(w, noise_mode="random"), random_a)  # the global generator's draws
    assert not torch.allclose(random_a, random_b, atol=1e-4)
    # "none" is the network without noise: the same as zero strengths with any noise
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise.strength"):
                p.zero_()
    assert torch.equal(G.synthesis(w, noise_mode="random"), none)
    assert torch.equal(G.synthesis(w, noise_mode="const"), none)
    with pytest.raises(ValueError):
        G.synthesis(w, noise_mode="fixed")


def test_const_noise_comes_from_the_checkpointed_buffers(G, family):
    buffers = [name for name, _ in G.named_buffers() if name.endswith("noise_const")]
    shapes = [tuple(b.shape) for name, b in G.named_buffers() if name.endswith("noise_const")]
    if family == "stylegan":
        assert len(buffers) == G.num_ws  # one noise map per layer, at its resolution
        assert shapes == [(r, r) for r in G.layer_resolutions]
    else:  # one per modulated conv: one at 4², two at every other resolution (the to-RGB layers have none)
        assert shapes == [(4, 4)] + [(r, r) for r in (8, 16, 32) for _ in range(2)]


def test_eval_images_lie_in_range_training_images_are_raw(G):
    w = G.mapping(latents()) * 50  # an exaggerated style pushes pixels far out of range
    assert G.synthesis(w, noise_mode="none").abs().max() <= 1.0
    G.train()
    raw = G.synthesis(w, noise_mode="none")
    assert raw.abs().max() > 1.0  # D sees the unclamped output in training, as in v1


def test_v1_truncates_the_styles_up_to_32_squared_unless_told_otherwise():
    """G_style's truncation_cutoff = 8: at 64² (10 layers) ψ moves layers 0–7 and leaves 8, 9 (64²) alone."""
    G = build_tiny(resolution=64, family="stylegan").generator.eval()
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn(G.w_dim, generator=torch.Generator().manual_seed(7)))
    z = latents()
    w = G.mapping(z)
    default = G.mapping(z, psi=0.5)
    torch.testing.assert_close(default[:, :8], G.w_avg + 0.5 * (w[:, :8] - G.w_avg))
    assert torch.equal(default[:, 8:], w[:, 8:])
    everything = G.mapping(z, psi=0.5, cutoff=G.num_ws)
    torch.testing.assert_close(everything, G.w_avg + 0.5 * (w - G.w_avg))
    every_layer = build_tiny(resolution=64, family="stylegan", truncation_cutoff=None).generator.eval()
    assert every_layer.mapping.truncation_cutoff is None
    s2 = build_tiny(resolution=64, family="stylegan2").generator.eval()
    assert s2.mapping.truncation_cutoff is None  # stylegan2-ada: every layer
