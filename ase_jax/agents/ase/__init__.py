"""ASE: Adversarial Skill Embeddings (docs/reference.md §5).

`networks` holds the flax modules and the `make_ase_networks` factory, `losses` ASE's own rewards
and loss terms, `replay` the buffer of past agent samples, `train` the compiled training iteration
(on the shared PPO machinery of `ase_jax.agents.ppo`) and `policy` a trained model for inference.
"""
