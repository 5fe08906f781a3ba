"""The CPU speed layer: what makes the model fast on XLA:CPU, without changing what it computes.

* :mod:`~bntt_jax.cpu.ffi`: C++ sources (``csrc/``) compiled on first use
  (:mod:`~bntt_jax.cpu.build`) and registered through ``jax.ffi``, with a pure-XLA fallback
  where no compiler is found;
* :mod:`~bntt_jax.cpu.convolution`: the 3×3 convolution and the dense layer, event-driven on
  CPU (forward and filter gradient visit only the spikes), the library ops elsewhere;
* :mod:`~bntt_jax.cpu.fused`: a spiking layer in few passes: in evaluation the convolution,
  per-step affine and LIF in one; in training the normalisation with the LIF neurons, one
  pass forward and two backward;
* :mod:`~bntt_jax.cpu.masked`: the input gradient computed only where the surrogate of the
  next layer's neurons is non-zero;
* :mod:`~bntt_jax.cpu.choice`: which form of each operation runs (a compiled kernel or XLA's
  op, per target, shape and the inputs' density; the crossovers measured by
  ``benchmarks.kernels``): the one place a form is chosen;
* :mod:`~bntt_jax.cpu.huge_pages`: transparent huge pages for XLA:CPU's large buffers.

Nothing here imports the model: the model chooses these ops, never the other way round.
"""
