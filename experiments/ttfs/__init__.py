"""The TTFS method (Park & Yoon) in the experiment suite.

* :mod:`~experiments.ttfs.config`: its keys (the surrogate network, the training terms) and
  the paper's training setup (Table 3); registers the method (no JAX);
* :mod:`~experiments.ttfs.entries`: its registered experiments (Tables 1, 2) and sweeps
  (Fig. 2, 3, 5, 7, 8, 11–17);
* :mod:`~experiments.ttfs.method`: its implementation for the run loop and the spiking
  network's check at the end (JAX);
* :mod:`~experiments.ttfs.report` and :mod:`~experiments.ttfs.figures`: its plots,
  ``report.md`` and the sweeps' figures.
"""
