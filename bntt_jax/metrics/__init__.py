"""What is measured of a network: :mod:`~bntt_jax.metrics.energy` (spike rate, sparsity,
FLOPs and energy of both papers; plain Python) and :mod:`~bntt_jax.metrics.robustness`
(Gaussian noise and FGSM, BNTT Sec. 4.4 and Appendix F)."""
