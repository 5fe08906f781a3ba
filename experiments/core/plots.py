"""What every method's plots share: pyplot, figures written atomically, the training curves.

matplotlib loads when the first figure is drawn (:func:`pyplot`), not when a module that
draws is imported: a command checks its arguments in a fraction of a second without it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any


@functools.cache
def pyplot() -> Any:
    """``matplotlib.pyplot`` with the file-only Agg backend (no screen is needed or used)."""
    import matplotlib  # here, not at the top: see the module docstring

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` atomically (a temporary file, then a rename) and close it;
    the image takes in every label (``bbox_inches="tight"``), so nothing is cut."""
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    tmp.replace(path)
    return path


def plot_curves(out_dir: Path, history: list[dict[str, Any]]) -> Path:
    """``curves.png``: train and test loss and accuracy per epoch."""
    epochs = [h["epoch"] for h in history]
    tested = [h for h in history if "test_accuracy" in h]
    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(10, 3.8))
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    if tested:
        ax1.plot([h["epoch"] for h in tested], [h["test_loss"] for h in tested], label="test loss")
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    ax1.legend()
    ax2.plot(epochs, [100 * h["train_accuracy"] for h in history], label="train")
    if tested:
        ax2.plot(
            [h["epoch"] for h in tested], [100 * h["test_accuracy"] for h in tested], label="test"
        )
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax2.legend()
    return save_figure(fig, out_dir / "curves.png")
