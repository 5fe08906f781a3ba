"""Other tools' formats: :mod:`~bntt_jax.interop.pytorch`, the authors' PyTorch BNTT
checkpoints, both ways; :mod:`~bntt_jax.interop.nir_export`, a trained network as a NIR graph
(``bntt_jax.to_nir``) for neuromorphic toolchains, refusing what NIR cannot represent exactly."""
