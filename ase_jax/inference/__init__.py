"""Trained runs used, not trained: loading a pre-trained model or a task policy from a checkpoint,
latents (e_k, random, interpolations), the skill metrics of rollouts, policy.json and the
C-MuJoCo player. Nothing here imports a training step or a command."""
