"""Robustness of a BNTT-family network (BNTT paper, Fig. 4b and Appendix F; journal Fig. 8):
test accuracy under Gaussian noise N(0, σ²) added to the clean image in [0, 1] before
standardisation, and under FGSM crafted on the spiking network itself (Sharmin et al. 2020;
:mod:`bntt_jax.robustness`), for the config's ``noise_sigmas`` and ``fgsm_epsilons`` on the
first ``analysis_images`` test images. The noise draws, the encoder draws of the attack and
of the evaluation are seeded from the run's seed."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from pathlib import Path
from typing import Any

import jax
import numpy as np

from bntt_jax import robustness
from experiments.methods import evaluate
from experiments.report import save_figure

#: Offsets of the analysis's random streams from the run's seed.
NOISE_STREAM, ATTACK_STREAM = 7_919, 104_729


@functools.cache
def _gradient_fn(encoder: str):
    return jax.jit(functools.partial(robustness.input_gradient, encoder=encoder))


def _accuracy(
    subject: Any, inputs: np.ndarray, labels: np.ndarray, batch: int
) -> tuple[float, float]:
    """Accuracy and loss of the network on standardised ``inputs`` (one fixed encoder draw)."""
    data = dataclasses.replace(subject.data, test_x=inputs, test_y=labels)
    config = dataclasses.replace(subject.config, max_eval_batches=None, eval_batch_size=batch)
    ev = evaluate(subject.net, data, config)
    return ev["accuracy"], ev["loss"]


def compute(subject: Any) -> dict[str, Any]:
    config, data = subject.config, subject.data
    n = len(data.test_x) if config.analysis_images is None else config.analysis_images
    batch = min(config.eval_batch_size, n)
    n -= n % batch  # evaluation drops a partial batch: use whole batches only
    images = data.to_intensities(data.test_x[:n])
    labels = data.test_y[:n]
    mean = np.asarray(data.mean, np.float32)
    std = np.asarray(data.std, np.float32)

    noise = []
    key = jax.random.key(config.seed + NOISE_STREAM)
    for i, sigma in enumerate(config.noise_sigmas):
        noisy = np.asarray(robustness.gaussian_noise(jax.random.fold_in(key, i), images, sigma))
        accuracy, loss = _accuracy(subject, data.from_intensities(noisy), labels, batch)
        noise.append({"sigma": sigma, "accuracy": accuracy, "loss": loss})

    gradient = _gradient_fn(config.encoder)
    key = jax.random.key(config.seed + ATTACK_STREAM)
    signs = np.concatenate([
        np.sign(np.asarray(gradient(subject.net, images[i : i + batch], labels[i : i + batch],
                                    jax.random.fold_in(key, i), mean=mean, std=std)))
        for i in range(0, n, batch)
    ])  # fmt: skip
    attack = []
    for epsilon in config.fgsm_epsilons:
        adversarial = np.clip(images + epsilon * signs, 0.0, 1.0).astype(images.dtype)
        accuracy, loss = _accuracy(subject, data.from_intensities(adversarial), labels, batch)
        attack.append({"epsilon": epsilon, "accuracy": accuracy, "loss": loss})
    return {"images": n, "encoder": config.encoder, "noise": noise, "fgsm": attack}


def draw(out_dir: Path, result: dict[str, Any]) -> list[Path]:
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot([r["sigma"] for r in result["noise"]],
             [100 * r["accuracy"] for r in result["noise"]], "o-")  # fmt: skip
    ax1.set(xlabel="σ of the Gaussian noise (on [0, 1] images)", ylabel="test accuracy (%)",
            title="Gaussian noise (Fig. 4b)")  # fmt: skip
    ax2.plot([r["epsilon"] for r in result["fgsm"]],
             [100 * r["accuracy"] for r in result["fgsm"]], "o-")  # fmt: skip
    ax2.set(xlabel="ε (on [0, 1] images)", ylabel="test accuracy (%)",
            title="FGSM crafted on the SNN (App. F)")  # fmt: skip
    return [save_figure(fig, Path(out_dir) / "robustness.png")]


def _cell(row: dict[str, Any] | None, key: str) -> str:
    return " | " if row is None else f"{row[key]:g} | {100 * row['accuracy']:.2f}%"


def report_lines(result: dict[str, Any]) -> list[str]:
    return [
        f"{result['images']} test images; noise unclipped, adversarial images clipped to [0, 1].",
        "",
        "| σ (noise) | accuracy | | ε (FGSM) | accuracy | loss |",
        "|---|---|---|---|---|---|",
        *[
            f"| {_cell(n, 'sigma')} | | {_cell(a, 'epsilon')} | {a['loss']:.3f} |"
            if a
            else f"| {_cell(n, 'sigma')} | | | | |"
            for n, a in itertools.zip_longest(result["noise"], result["fgsm"])
        ],
        "",
    ]


def draw_compare(out_dir: Path, results: dict[str, dict[str, Any]]) -> list[Path]:
    """Fig. 4b and App. F / journal Fig. 8: accuracy against σ and against ε, one curve per
    run."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for run, r in results.items():
        ax1.plot([n["sigma"] for n in r["noise"]], [100 * n["accuracy"] for n in r["noise"]],
                 "o-", label=run)  # fmt: skip
        ax2.plot([a["epsilon"] for a in r["fgsm"]], [100 * a["accuracy"] for a in r["fgsm"]],
                 "o-", label=run)  # fmt: skip
    ax1.set(xlabel="σ of the Gaussian noise", ylabel="test accuracy (%)",
            title="Gaussian noise (Fig. 4b)")  # fmt: skip
    ax2.set(xlabel="ε", ylabel="test accuracy (%)", title="SNN-crafted FGSM (App. F)")
    ax1.legend(fontsize=7)
    return [save_figure(fig, Path(out_dir) / "robustness.png")]


def compare_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    runs = list(results)
    first = results[runs[0]]
    rows = [
        f"| σ = {n['sigma']:g} | "
        + " | ".join(f"{100 * results[r]['noise'][i]['accuracy']:.2f}%" for r in runs)
        + " |"
        for i, n in enumerate(first["noise"])
    ]
    rows += [
        f"| ε = {a['epsilon']:g} | "
        + " | ".join(f"{100 * results[r]['fgsm'][i]['accuracy']:.2f}%" for r in runs)
        + " |"
        for i, a in enumerate(first["fgsm"])
    ]
    return [
        f"| | {' | '.join(runs)} |",
        "|---" * (len(runs) + 1) + "|",
        *rows,
        "",
    ]
