"""Robustness (BNTT paper, Fig. 4b and Appendix F; journal Fig. 8): test accuracy under
Gaussian noise N(0, σ²) added to the clean image in [0, 1] before standardisation, and under
FGSM (:mod:`bntt_jax.metrics.robustness`), for the config's ``noise_sigmas`` and
``fgsm_epsilons`` on the first ``analysis_images`` test images.

Where FGSM is crafted: a BNTT-family network on itself (BPTT with the surrogate, the Poisson
encoder as the identity backward; Sharmin et al. 2020); the ANN on itself (exact gradient); a
converted network on the ANN it was converted from. With a ``transfer`` ANN, every other
network is also attacked with the ANN's adversarial images (``fgsm_transfer``). The noise
draws, the encoder draws of the attack and of the evaluation are seeded from the run's seed."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from pathlib import Path
from typing import Any

import jax
import numpy as np

from bntt_jax.metrics import robustness
from experiments.analyses.subject import evaluate_on
from experiments.core.plots import pyplot, save_figure

#: Offsets of the analysis's random streams from the run's seed.
NOISE_STREAM, ATTACK_STREAM = 7_919, 104_729


def not_applicable(subject: Any) -> str | None:
    if subject.kind == "snn" and subject.config.network.encoder == "frames":
        return (
            "event frames are event counts, not images in [0, 1]: Gaussian pixel noise and "
            "FGSM (Fig. 4b, App. F) perturb images."
        )
    return None


@functools.cache
def _gradient_fn(encoder: str):
    return jax.jit(functools.partial(robustness.input_gradient, encoder=encoder))


@functools.cache
def _ann_gradient_fn():
    return jax.jit(robustness.ann_input_gradient)


def _accuracy(
    subject: Any, inputs: np.ndarray, labels: np.ndarray, batch: int
) -> tuple[float, float | None]:
    """Accuracy and loss of the network on standardised ``inputs`` (one fixed encoder draw)."""
    data = dataclasses.replace(subject.data, test_x=inputs, test_y=labels)
    config = dataclasses.replace(subject.config, max_eval_batches=None, eval_batch_size=batch)
    ev = evaluate_on(subject, data, config)
    return ev["accuracy"], ev["loss"]


def crafted_on(subject: Any) -> str:
    """Which network the subject's own FGSM is crafted on."""
    return {
        "snn": "itself (BPTT, surrogate gradient)",
        "ann": "itself",
        "conversion": "its ANN (transferred)",
    }[subject.kind]


def gradient_signs(
    subject: Any, images: np.ndarray, labels: np.ndarray, batch: int, ann: Any = None
) -> np.ndarray:
    """``sign(∇ₓ L)`` on the intensities ``images``, crafted where :func:`crafted_on` says
    (or on the ANN ``ann`` if given), batch by batch."""
    data, config = subject.data, subject.config
    mean = np.asarray(data.mean, np.float32)
    std = np.asarray(data.std, np.float32)
    if ann is None and subject.kind != "snn":
        ann = subject.net if subject.kind == "ann" else subject.source
    key = jax.random.key(config.seed + ATTACK_STREAM)
    out = []
    for i in range(0, len(images), batch):
        x, y = images[i : i + batch], labels[i : i + batch]
        if ann is not None:
            grad = _ann_gradient_fn()(ann, x, y, mean=mean, std=std)
        else:
            gradient = _gradient_fn(config.network.encoder)
            grad = gradient(subject.net, x, y, jax.random.fold_in(key, i), mean=mean, std=std)
        out.append(np.sign(np.asarray(grad)))
    return np.concatenate(out)


def _attack(
    subject: Any, images: np.ndarray, labels: np.ndarray, signs: np.ndarray, batch: int
) -> list[dict[str, Any]]:
    data, rows = subject.data, []
    for epsilon in subject.config.analysis.fgsm_epsilons:
        adversarial = np.clip(images + epsilon * signs, 0.0, 1.0).astype(images.dtype)
        accuracy, loss = _accuracy(subject, data.from_intensities(adversarial), labels, batch)
        rows.append({"epsilon": epsilon, "accuracy": accuracy, "loss": loss})
    return rows


def _test_images(subject: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """The first ``analysis_images`` test images as intensities, their labels and the batch
    (every one of them: evaluation pads its last batch)."""
    config, data = subject.config, subject.data
    cap = config.analysis.analysis_images
    n = len(data.test_x) if cap is None else min(cap, len(data.test_x))
    batch = min(config.eval_batch_size, n)
    return data.to_intensities(data.test_x[:n]), data.test_y[:n], batch


def compute_transfer(subject: Any) -> dict[str, Any] | None:
    """FGSM crafted on the subject's ``transfer`` ANN and evaluated on the subject (``None``
    without one, and for an ANN)."""
    if subject.transfer is None or subject.kind == "ann":
        return None
    images, labels, batch = _test_images(subject)
    signs = gradient_signs(subject, images, labels, batch, ann=subject.transfer["net"])
    return {
        "source": subject.transfer["name"],
        "fgsm": _attack(subject, images, labels, signs, batch),
    }


def reusable(result: dict[str, Any], subject: Any) -> bool:
    """Whether a saved result was computed on this subject's images and grids."""
    config = subject.config
    images, _, _ = _test_images(subject)
    return (
        result.get("kind") == subject.kind
        and result.get("images") == len(images)
        and [r["sigma"] for r in result["noise"]] == list(config.analysis.noise_sigmas)
        and [r["epsilon"] for r in result["fgsm"]] == list(config.analysis.fgsm_epsilons)
    )


def compute(subject: Any) -> dict[str, Any]:
    config, data = subject.config, subject.data
    images, labels, batch = _test_images(subject)

    noise = []
    key = jax.random.key(config.seed + NOISE_STREAM)
    for i, sigma in enumerate(config.analysis.noise_sigmas):
        noisy = np.asarray(robustness.gaussian_noise(jax.random.fold_in(key, i), images, sigma))
        accuracy, loss = _accuracy(subject, data.from_intensities(noisy), labels, batch)
        noise.append({"sigma": sigma, "accuracy": accuracy, "loss": loss})

    attack = _attack(subject, images, labels, gradient_signs(subject, images, labels, batch), batch)
    return {
        "kind": subject.kind,
        "images": len(images),
        "num_steps": subject.num_steps,
        "crafted_on": crafted_on(subject),
        "noise": noise,
        "fgsm": attack,
        "fgsm_transfer": compute_transfer(subject),
    }


def draw(out_dir: Path, result: dict[str, Any]) -> list[Path]:
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(
        [r["sigma"] for r in result["noise"]], [100 * r["accuracy"] for r in result["noise"]], "o-"
    )
    ax1.set(
        xlabel="σ of the Gaussian noise (on [0, 1] images)",
        ylabel="test accuracy (%)",
        title="Gaussian noise (Fig. 4b)",
    )
    crafted = result.get("crafted_on", "itself")
    ax2.plot(
        [r["epsilon"] for r in result["fgsm"]],
        [100 * r["accuracy"] for r in result["fgsm"]],
        "o-",
        label=f"crafted on {crafted}",
    )
    transfer = result.get("fgsm_transfer")
    if transfer:
        ax2.plot(
            [r["epsilon"] for r in transfer["fgsm"]],
            [100 * r["accuracy"] for r in transfer["fgsm"]],
            "s--",
            label=f"crafted on the ANN {transfer['source']}",
        )
    ax2.set(xlabel="ε (on [0, 1] images)", ylabel="test accuracy (%)", title="FGSM (App. F)")
    ax2.legend(fontsize=7)
    return [save_figure(fig, Path(out_dir) / "robustness.png")]


def _cell(row: dict[str, Any] | None, key: str) -> str:
    return " | " if row is None else f"{row[key]:g} | {100 * row['accuracy']:.2f}%"


def _loss(row: dict[str, Any]) -> str:
    return "–" if row["loss"] is None else f"{row['loss']:.3f}"


def report_lines(result: dict[str, Any]) -> list[str]:
    transfer = result.get("fgsm_transfer")
    transfer_lines = (
        []
        if not transfer
        else [
            f"FGSM crafted on the ANN {transfer['source']} and transferred: "
            + ", ".join(
                f"ε = {a['epsilon']:g}: {100 * a['accuracy']:.2f}%" for a in transfer["fgsm"]
            ),
            "",
        ]
    )
    return [
        f"{result['images']} test images; noise unclipped, adversarial images clipped to [0, 1]; "
        f"FGSM crafted on {result.get('crafted_on', 'itself')}.",
        "",
        *transfer_lines,
        "| σ (noise) | accuracy | | ε (FGSM) | accuracy | loss |",
        "|---|---|---|---|---|---|",
        *[
            f"| {_cell(n, 'sigma')} | | {_cell(a, 'epsilon')} | {_loss(a)} |"
            if a
            else f"| {_cell(n, 'sigma')} | | | | |"
            for n, a in itertools.zip_longest(result["noise"], result["fgsm"])
        ],
        "",
    ]


def draw_compare(out_dir: Path, results: dict[str, dict[str, Any]]) -> list[Path]:
    """Fig. 4b and App. F / journal Fig. 8: accuracy against σ and against ε, one curve per
    run."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for run, r in results.items():
        ax1.plot(
            [n["sigma"] for n in r["noise"]],
            [100 * n["accuracy"] for n in r["noise"]],
            "o-",
            label=run,
        )
        ax2.plot(
            [a["epsilon"] for a in r["fgsm"]],
            [100 * a["accuracy"] for a in r["fgsm"]],
            "o-",
            label=run,
        )
    ax1.set(
        xlabel="σ of the Gaussian noise",
        ylabel="test accuracy (%)",
        title="Gaussian noise (Fig. 4b)",
    )
    ax2.set(
        xlabel="ε",
        ylabel="test accuracy (%)",
        title="FGSM, each crafted on itself (a conversion on its ANN)",
    )
    ax2.legend(fontsize=7)
    ax1.legend(fontsize=7)
    written = [save_figure(fig, Path(out_dir) / "robustness.png")]
    transferred = _transferred(results)
    if transferred:
        fig, ax = plt.subplots(figsize=(6, 4))
        for run, rows in transferred.items():
            ax.plot(
                [a["epsilon"] for a in rows], [100 * a["accuracy"] for a in rows], "o-", label=run
            )
        ax.set(
            xlabel="ε",
            ylabel="test accuracy (%)",
            title="FGSM crafted on the ANN, transferred (App. F)",
        )
        ax.legend(fontsize=7)
        written.append(save_figure(fig, Path(out_dir) / "robustness_transfer.png"))
    return written


def _transferred(results: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The rows of FGSM crafted on the compared ANN for every run (the ANN's own FGSM for the
    ANN itself and for its conversion); empty when no run was attacked with a transfer."""
    if not any(r.get("fgsm_transfer") for r in results.values()):
        return {}
    out = {}
    for run, r in results.items():
        if r.get("fgsm_transfer"):
            out[run] = r["fgsm_transfer"]["fgsm"]
        elif r.get("kind") in ("ann", "conversion"):
            # the ANN's own FGSM, and its conversion's, which is crafted on that ANN
            out[run] = r["fgsm"]
    return out


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
    transferred = _transferred(results)
    rows += [
        f"| ε = {a['epsilon']:g}, crafted on the ANN | "
        + " | ".join(
            f"{100 * transferred[r][i]['accuracy']:.2f}%" if r in transferred else "–" for r in runs
        )
        + " |"
        for i, a in enumerate(next(iter(transferred.values()), []))
    ]
    return [
        f"| | {' | '.join(runs)} |",
        "|---" * (len(runs) + 1) + "|",
        *rows,
        "",
    ]
