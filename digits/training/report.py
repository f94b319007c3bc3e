"""What a training run leaves for people: metrics.json, learning curves, the confusion matrix, the refusal trade-off."""

import json
import pathlib

import numpy as np


def write(report_dir, metadata):
    """Write metrics.json, learning_curves.png, confusion_matrix.png and not_a_digit_tradeoff.png into report_dir."""
    import matplotlib

    matplotlib.use("Agg")  # Files only; no display is needed or available.
    report_dir = pathlib.Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "metrics.json").write_text(json.dumps(metadata, indent=2) + "\n")
    _plot_learning_curves(metadata["history"], report_dir / "learning_curves.png")
    _plot_confusion_matrix(np.array(metadata["confusion_matrix"]), report_dir / "confusion_matrix.png")
    _plot_tradeoff(metadata["rejection"], report_dir / "not_a_digit_tradeoff.png")


def summary(metadata):
    """A few lines for the terminal: test accuracy overall and per digit, and how often non-digits are refused."""
    per_digit = "  ".join(f"{digit}: {value:.2%}" for digit, value in metadata["per_digit_accuracy"].items())
    rejection = metadata["rejection"]
    refused = ", ".join(f"{name.replace('_', ' ')} {value:.1%}"
                        for name, value in rejection["test_non_digits_refused"].items())
    pipeline_check = " (a --quick pipeline check, not a model to serve)" if metadata["settings"].get("quick") else ""
    return (
        f"Test accuracy {metadata['test_accuracy']:.2%} ({metadata['test_errors']} errors, of which "
        f"{metadata['test_refused']} refused, in {metadata['test_images']} images) after "
        f"{metadata['epochs_run']} epochs, {metadata['training_seconds']:.0f} s of training{pipeline_check}\n"
        f"Per digit: {per_digit}\n"
        f"Not a digit from a probability of {rejection['threshold']} up: non-digits refused: {refused}"
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
    axes.set(xticks=range(confusion.shape[1]), yticks=range(confusion.shape[0]), xlabel="read as (10: not a digit)",
             ylabel="true digit", title="Confusion matrix (colour: mistakes)")
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_tradeoff(rejection, path):
    """Digits wrongly refused against non-digits wrongly read, as the threshold varies; the chosen point marked."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.5, 5))
    for key, label in (("validation_curve", "validation: MNIST digits, drawn non-digits"),
                       ("test_curve", "test: MNIST test set, held-out non-digit templates")):
        curve = rejection[key]
        axes.plot(100 * np.array(curve["digits_refused"]), 100 * np.array(curve["non_digits_read"]), marker=".",
                  markersize=3, label=label)
    for key, marker in (("validation_curve", "o"), ("test_curve", "s")):
        curve = rejection[key]
        index = curve["thresholds"].index(rejection["threshold"])
        axes.plot(100 * curve["digits_refused"][index], 100 * curve["non_digits_read"][index], marker=marker,
                  color="black", markersize=8, fillstyle="none")
    axes.annotate(f"circled: the chosen threshold, {rejection['threshold']}", xy=(0.03, 0.04), xycoords="axes fraction")
    axes.set(xscale="symlog", yscale="symlog", xlabel="digits wrongly refused (%)",
             ylabel="non-digits wrongly read as a digit (%)",
             title="Saying 'not a digit': the trade-off as the threshold varies")
    axes.xaxis.set_major_formatter(plt.ScalarFormatter())
    axes.yaxis.set_major_formatter(plt.ScalarFormatter())
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="upper right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
