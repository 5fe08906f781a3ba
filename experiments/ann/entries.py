"""The registered experiments of the ANN baseline (the BNTT paper's Table 3): the ANNs of the
spiking networks' topologies are those entries' configs with ReLU (:class:`Derived`)."""

from experiments.ann import config as _keys  # noqa: F401  (the ann method's keys, registered)
from experiments.core.registry import Derived, register

# The non-spiking ANN the BNTT paper's Table 3 compares against: the same VGG9 with ReLU and
# standard batch norm, by the same runner and schedule, lr 0.1 (0.3 is the spiking network's).
register(
    "cifar10_ann",
    "Table 3: VGG9 ANN (ReLU, batch norm) on CIFAR-10 (paper 91.5%)",
    Derived("cifar10_bntt", dict(method="ann", norm="bn", lr=0.1)),
    paper={
        "source": "BNTT paper, Table 3 (VGG9 ANN; Conversion at T = 100, 500, 1000)",
        "accuracy": 91.5,
        "conversion": {100: 89.3, 500: 90.9, 1000: 91.2},
    },
)
# The ANN of the embedded default's MLP (64 -> 256 -> 256 -> 10, ReLU and batch norm), by the
# same schedule: the reduced-scale Table 3 baseline.
register(
    "digits_ann",
    "ANN MLP (ReLU, batch norm) on the digits: the reduced-scale Table 3 baseline",
    Derived("digits_bntt", dict(method="ann", norm="bn")),
)
# The ANN of mnist5k_bntt's network (c16,c16,p,c32,c32,p,f128 with ReLU and batch norm) by the
# same schedule, lr 0.1 as the other ANNs; converted at T = 100, 500 and 1000 at its end.
register(
    "mnist5k_ann",
    "ANN of the mnist5k network (ReLU, batch norm) on 5,000 real MNIST digits, converted at "
    "T=100, 500, 1000",
    Derived("mnist5k_bntt", dict(method="ann", norm="bn")),
)
