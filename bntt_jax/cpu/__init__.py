"""The CPU speed layer: what makes the model fast on XLA:CPU, without changing what it computes.

* :mod:`~bntt_jax.cpu.ffi`: C++ sources (``csrc/``) compiled on first use and registered
  through ``jax.ffi``, with a pure-XLA fallback where no compiler is found;
* :mod:`~bntt_jax.cpu.convolution`: the 3×3 convolution and the dense layer, event-driven on
  CPU (forward and filter gradient visit only the spikes), the library ops elsewhere;
* :mod:`~bntt_jax.cpu.fused`: an evaluation-mode layer (convolution, per-step affine, LIF) in
  one pass;
* :mod:`~bntt_jax.cpu.huge_pages`: transparent huge pages for XLA:CPU's large buffers.

Nothing here imports the model: the model chooses these ops, never the other way round.
"""
