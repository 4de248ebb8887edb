"""Layers that families share (improved-GAN layers live in gancli.nn.improved)."""
