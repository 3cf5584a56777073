"""Motion data: the clip format, datasets, the jittable motion library, and the `python -m
ase_jax.motions` tools (inspect, track, download, play, import)."""
