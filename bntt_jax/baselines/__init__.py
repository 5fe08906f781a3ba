"""The baselines the BNTT papers compare against (Table 3): :mod:`~bntt_jax.baselines.ann`,
the non-spiking ANN of the spiking network's topology, and
:mod:`~bntt_jax.baselines.conversion`, that ANN converted to integrate-and-fire neurons."""
