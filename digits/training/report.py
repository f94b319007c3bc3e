"""What a training run leaves for people: metrics.json, a learning-curve plot and a confusion-matrix plot."""

import json
import pathlib

import numpy as np


def write(report_dir, metadata):
    """Write metrics.json, learning_curves.png and confusion_matrix.png into report_dir."""
    import matplotlib

    matplotlib.use("Agg")  # Files only; no display is needed or available.
    report_dir = pathlib.Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "metrics.json").write_text(json.dumps(metadata, indent=2) + "\n")
    _plot_learning_curves(metadata["history"], report_dir / "learning_curves.png")
    _plot_confusion_matrix(np.array(metadata["confusion_matrix"]), report_dir / "confusion_matrix.png")


def summary(metadata):
    """A few lines for the terminal: overall and per-digit test accuracy."""
    per_digit = "  ".join(f"{digit}: {value:.2%}" for digit, value in metadata["per_digit_accuracy"].items())
    return (
        f"Test accuracy {metadata['test_accuracy']:.2%} ({metadata['test_errors']} errors in "
        f"{metadata['test_images']} images) after {metadata['epochs_run']} epochs, "
        f"{metadata['training_seconds']:.0f} s of training\nPer digit: {per_digit}"
    )


def _plot_learning_curves(history, path):
    """Loss and error rate per epoch, training against validation."""
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["loss"]) + 1)
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        loss_axes.plot(epochs, history[key], marker="o", label=label)
    for key, label in (("accuracy", "training"), ("val_accuracy", "validation")):
        # Error rate on a log scale: accuracy itself crowds every epoch after the first against 1.0.
        accuracy_axes.plot(epochs, 100 * (1 - np.array(history[key])), marker="o", label=label)
    loss_axes.set(title="Loss", xlabel="epoch", yscale="log")
    accuracy_axes.set(title="Error rate (%)", xlabel="epoch", yscale="log")
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_confusion_matrix(confusion, path):
    """Test-set confusion matrix; the diagonal's share is the accuracy, the rest are the mistakes."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 5.5))
    mistakes = confusion.copy()
    np.fill_diagonal(mistakes, 0)
    image = axes.imshow(mistakes, cmap="Reds")
    for (true, predicted), count in np.ndenumerate(confusion):
        axes.text(predicted, true, str(count), ha="center", va="center", fontsize=7,
                  color="black" if true != predicted else "gray")
    axes.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true digit",
             title="Confusion matrix (colour: mistakes)")
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
