"""ASE: Adversarial Skill Embeddings (facts sheet section 5).

`networks` holds the flax modules and the `make_ase_networks` factory, `losses` the pure loss,
reward and advantage functions, `train` the compiled training iteration.
"""
