"""Random distortions of MNIST batches that mimic what preparation makes of real uploads.

After preparation every upload is a digit fitted into the 20x20 box and centred by mass, so what still
varies is what people's hands and cameras vary: slant, rotation, aspect ratio, a pixel or two of
placement, and stroke thickness (a 15 px canvas pen, a fine ballpoint). All random numbers are stateless
and derived from (seed, batch number), so a run is reproducible.
"""

import math

import tensorflow as tf

from digits.imaging import preparation

MAX_ROTATION_DEGREES = 12.0
MAX_SHEAR = 0.25
SCALE_RANGE = (0.88, 1.08)  # Prepared digits are always about box-sized; allow a little either way.
MAX_ASPECT_CHANGE = 0.12
MAX_SHIFT_PIXELS = 1.5
THICKER_PROBABILITY = 0.2
THINNER_PROBABILITY = 0.15


def augment_batch(images, seed):
    """Distort a batch (N, 28, 28, 1) of 0..1 images; `seed` is a stateless seed pair (int32[2])."""
    seeds = tf.random.experimental.stateless_split(seed, num=3)
    images = _random_affine(images, seeds[0])
    return _random_stroke_width(images, seeds[1])


def _random_affine(images, seed):
    """Rotate, shear, scale and shift each image about the centre, in one resampling."""
    count = tf.shape(images)[0]
    uniform = tf.random.stateless_uniform([count, 6], seed, minval=-1.0, maxval=1.0)
    angle = uniform[:, 0] * MAX_ROTATION_DEGREES * math.pi / 180.0
    shear = uniform[:, 1] * MAX_SHEAR
    scale = SCALE_RANGE[0] + (uniform[:, 2] + 1.0) / 2.0 * (SCALE_RANGE[1] - SCALE_RANGE[0])
    aspect = 1.0 + uniform[:, 3] * MAX_ASPECT_CHANGE
    shift_x = uniform[:, 4] * MAX_SHIFT_PIXELS
    shift_y = uniform[:, 5] * MAX_SHIFT_PIXELS
    scale_x, scale_y = scale * aspect, scale / aspect
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Forward map: output = R @ Shear @ S @ (input - centre) + centre + shift. The transform op wants the
    # inverse (output pixel -> input pixel), written out here for the 2x2 part A = R @ Shear @ S.
    a00, a01 = cos * scale_x, (cos * shear - sin) * scale_y
    a10, a11 = sin * scale_x, (sin * shear + cos) * scale_y
    determinant = a00 * a11 - a01 * a10
    i00, i01, i10, i11 = a11 / determinant, -a01 / determinant, -a10 / determinant, a00 / determinant
    center = preparation.IMAGE_SIDE / 2.0 - 0.5
    offset_x = center + shift_x
    offset_y = center + shift_y
    b0 = center - (i00 * offset_x + i01 * offset_y)
    b1 = center - (i10 * offset_x + i11 * offset_y)
    zeros = tf.zeros_like(angle)
    transforms = tf.stack([i00, i01, b0, i10, i11, b1, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def _random_stroke_width(images, seed):
    """Thicken some digits (grey dilation) and thin others (grey erosion), keep the rest."""
    count = tf.shape(images)[0]
    choice = tf.random.stateless_uniform([count, 1, 1, 1], seed)
    thicker = tf.nn.max_pool2d(images, ksize=2, strides=1, padding="SAME")
    eroded = -tf.nn.max_pool2d(-images, ksize=2, strides=1, padding="SAME")
    # Eroding by a full pixel erases MNIST's thinner strokes; blend halfway instead.
    thinner = 0.5 * (images + eroded)
    return tf.where(
        choice < THICKER_PROBABILITY,
        thicker,
        tf.where(choice < THICKER_PROBABILITY + THINNER_PROBABILITY, thinner, images),
    )
