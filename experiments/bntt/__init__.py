"""The BNTT method (Kim & Panda) in the experiment suite.

* :mod:`~experiments.bntt.config`: its keys (network and input encoding) and the authors'
  CIFAR-10 settings; registers the method (no JAX);
* :mod:`~experiments.bntt.entries`: its registered experiments (Table 1, Table 3 and its
  comparison sweep, the embedded digits default);
* :mod:`~experiments.bntt.method`: its implementation for the run loop (JAX);
* :mod:`~experiments.bntt.report`: its plots and ``report.md`` (early exit of Fig. 3, 6);
* :mod:`~experiments.bntt.comparison`: the methods side by side (Table 3, S1, Fig. 1, 4).
"""
