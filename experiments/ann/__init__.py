"""The non-spiking ANN of the BNTT network's topology (the BNTT papers' Table 3 baseline) and
its conversion to integrate-and-fire neurons, in the experiment suite.

* :mod:`~experiments.ann.config`: its keys (network, conversion); registers the method;
* :mod:`~experiments.ann.entries`: its registered experiments;
* :mod:`~experiments.ann.method`: its implementation for the run loop, the conversion at its
  end and the converted network's evaluation (JAX);
* :mod:`~experiments.ann.report`: its plots and ``report.md``.
"""
