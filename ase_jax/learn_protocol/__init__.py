"""The learning protocol of `python -m ase_jax.bench learn`: its run (runner) and its curves (curves)."""
