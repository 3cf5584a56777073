"""Task training: a high-level controller over a frozen pre-trained low-level policy (or, as the
Scratch baseline, a plain policy acting directly)."""
