"""Other tools' formats: :mod:`~bntt_jax.interop.pytorch`, the authors' PyTorch BNTT
checkpoints, both ways."""
