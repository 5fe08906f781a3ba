"""The core of the experiment suite, shared by every method: the run loop and its ledger (the
results folder, its commit protocol, checkpoints), configs, data readers, the registry of
experiments and sweeps, and the one batched test-set loop. Nothing here knows a method: each
method (``experiments/bntt``, ``ttfs``, ``ann``) registers its keys, its entries and its
implementation (:class:`experiments.core.method.Method`)."""
