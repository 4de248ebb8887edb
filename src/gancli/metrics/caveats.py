"""Caveats a metric carries: the registry shows them beside the metric, its numerical module returns them with
its result. Cheap to import, like the registry."""

PARZEN_CAVEAT = "Parzen estimates are unreliable in high dimension (Theis et al. 2016)"
