"""The registered experiments, one per table cell or figure they reproduce."""

from experiments.config import ExperimentConfig
from experiments.registry import register

# The embedded default: scikit-learn's digits ship inside the package, so it runs anywhere.
# A BNTT MLP (64 -> 256 -> 256 -> 10) with Poisson spikes, T = 25 as the paper's CIFAR-10 run.
register(
    "digits_bntt",
    "BNTT MLP on scikit-learn's 8x8 digits, T=25 (embedded default, ~15 s on 2 CPU cores)",
    ExperimentConfig(
        dataset="digits",
        arch="mlp",
        norm="bntt",
        num_steps=25,
        leak=0.95,
        hidden=(256, 256),
        optimizer="sgd",
        lr=0.1,
        epochs=30,
        batch_size=32,
        eval_batch_size=360,
        eval_every=5,
    ),
)
