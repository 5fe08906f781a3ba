"""``digits_bntt``: the embedded default, on scikit-learn's 8×8 digits (ships with the package).

PLACEHOLDER until the end-to-end training issue (#3) lands: this entry runs the BNTT engine
for real on the held-out digits (Poisson spikes, ``simulate``, per-layer spike rates) but
with an *untrained* network, so its accuracy is chance level. It checks the install and the
engine on real data; training arrives with issue #3.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import bntt_jax as bj
from experiments.registry import register

NUM_STEPS = 25
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def load_digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits as ``[N, 64]`` normalised features: a stratified 80/20 split with a fixed seed."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as err:
        raise SystemExit(
            "digits_bntt needs scikit-learn (its digits ship inside the package): "
            'pip install -e ".[data]"'
        ) from err
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, data.target, test_size=TEST_FRACTION, stratify=data.target, random_state=SPLIT_SEED
    )
    mean, std = x_train.mean(), x_train.std()
    return (x_train - mean) / std, (x_test - mean) / std, y_train, y_test


@register(
    "digits_bntt",
    "BNTT MLP on scikit-learn digits (embedded default; engine check until training lands, #3)",
)
def run(seed: int = 0) -> dict[str, Any]:
    start = time.perf_counter()
    _, x_test, _, y_test = load_digits_split()
    config = bj.NetworkConfig(arch="mlp", in_features=64, num_steps=NUM_STEPS, num_classes=10)
    key_init, key_spikes = jax.random.split(jax.random.key(seed))
    params = bj.init(key_init, config)
    spikes = bj.poisson_encode(key_spikes, jnp.asarray(x_test), NUM_STEPS)
    out = bj.simulate(params, spikes, NUM_STEPS)
    accuracy = float(jnp.mean(jnp.argmax(out.logits, -1) == jnp.asarray(y_test)))
    neurons = config.neurons_per_layer()
    rates = {  # Eq. 23: spikes over all steps per neuron, averaged over the test images
        name: float(counts.sum()) / (neurons[name] * len(y_test))
        for name, counts in out.spike_counts.items()
    }
    metrics = {
        "test_accuracy": accuracy,
        "spike_rate": rates,
        "num_test_images": len(y_test),
        "trained": False,
        "wall_time_s": time.perf_counter() - start,
    }
    print(f"digits_bntt: {len(y_test)} held-out digits, T = {NUM_STEPS}, untrained BNTT MLP")
    for name, rate in rates.items():
        print(f"  {name}: {rate:.3f} spikes per neuron over {NUM_STEPS} steps (Eq. 23)")
    print(f"  accuracy {accuracy:.1%} (chance: training lands with issue #3)")
    print(f"  wall time {metrics['wall_time_s']:.1f} s")
    return metrics
