/* The gray channel of an 8-bit PNG's filtered rows, checked and unfiltered in one pass: the compiled form of
 * canvas_png's filtered-bytes path, built by `pip install -e .` (setup.py) where a C compiler and Python's
 * headers are found. canvas_png checks the file's chunks and inflates its stream; this takes the result.
 *
 * An RGBA canvas (4 channels) is taken only if every pixel is gray and opaque, judged on the filtered bytes as
 * canvas_png's NumPy code judges them: R, G and B equal (PNG filters each channel by the same rule, so the
 * decoded ones are equal exactly when these are), and alpha the byte an alpha of 255 leaves under the row's
 * filter. NumPy needs several passes over image-sized arrays for that; this reads each byte once.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { NONE, SUB, UP, AVERAGE, PAETH };
#define MAX_SIDE (1 << 24) /* More than canvas_png.MAX_PIXELS allows on either side; keeps sizes far from overflow. */

static int paeth(int left, int above, int above_left)
{
    int estimate = left + above - above_left;
    int to_left = abs(estimate - left), to_above = abs(estimate - above), to_above_left = abs(estimate - above_left);
    if (to_left <= to_above && to_left <= to_above_left)
        return left;
    return to_above <= to_above_left ? above : above_left;
}

/* PNG's predictor of a byte from its left, upper and upper-left neighbours. */
static int predict(int kind, int left, int above, int above_left)
{
    switch (kind) {
    case SUB: return left;
    case UP: return above;
    case AVERAGE: return (left + above) >> 1;
    case PAETH: return paeth(left, above, above_left);
    default: return 0;
    }
}

/* A row's R bytes into gray; whether its pixels are gray and opaque. The row above the first is zeros. */
static int take_gray(const uint8_t *pixels, Py_ssize_t width, int kind, int first_row, uint8_t *gray)
{
    int above = first_row ? 0 : 255;
    unsigned first = (uint8_t)(255 - predict(kind, 0, above, 0)); /* The first pixel's left neighbour is zeros. */
    unsigned rest = (uint8_t)(255 - predict(kind, 255, above, above));
    unsigned differ = (pixels[0] ^ pixels[1]) | (pixels[1] ^ pixels[2]) | (pixels[3] ^ first);
    gray[0] = pixels[0];
    for (Py_ssize_t x = 1; x < width; x++) {
        const uint8_t *pixel = pixels + 4 * x;
        differ |= (pixel[0] ^ pixel[1]) | (pixel[1] ^ pixel[2]) | (pixel[3] ^ rest);
        gray[x] = pixel[0];
    }
    return differ == 0;
}

/* Unfilter one row of one-byte pixels in place; above is NULL for the first row (zeros above it). */
static void unfilter(uint8_t *restrict row, const uint8_t *restrict above, Py_ssize_t width, int kind)
{
    Py_ssize_t x;
    switch (kind) {
    case SUB:
        for (x = 1; x < width; x++)
            row[x] = (uint8_t)(row[x] + row[x - 1]);
        break;
    case UP:
        if (above)
            for (x = 0; x < width; x++)
                row[x] = (uint8_t)(row[x] + above[x]);
        break;
    case AVERAGE:
        row[0] = (uint8_t)(row[0] + (above ? above[0] >> 1 : 0));
        for (x = 1; x < width; x++)
            row[x] = (uint8_t)(row[x] + ((row[x - 1] + (above ? above[x] : 0)) >> 1));
        break;
    case PAETH:
        if (!above) { /* With zeros above, Paeth predicts the left neighbour: Sub. */
            for (x = 1; x < width; x++)
                row[x] = (uint8_t)(row[x] + row[x - 1]);
            break;
        }
        row[0] = (uint8_t)(row[0] + above[0]);
        for (x = 1; x < width; x++)
            row[x] = (uint8_t)(row[x] + paeth(row[x - 1], above[x], above[x - 1]));
        break;
    default:
        break;
    }
}

/* Whether the rows were taken (every filter type known; for RGBA, every pixel gray and opaque). */
static int gray_rows_of(const uint8_t *filtered, Py_ssize_t width, Py_ssize_t height, int channels, uint8_t *gray)
{
    Py_ssize_t stride = 1 + channels * width;
    for (Py_ssize_t y = 0; y < height; y++) {
        const uint8_t *row = filtered + y * stride;
        uint8_t *out = gray + y * width;
        int kind = row[0];
        if (kind > PAETH)
            return 0;
        if (channels == 4) {
            if (!take_gray(row + 1, width, kind, y == 0, out))
                return 0;
        } else {
            memcpy(out, row + 1, (size_t)width);
        }
        unfilter(out, y ? out - width : NULL, width, kind);
    }
    return 1;
}

static PyObject *gray_rows(PyObject *module, PyObject *args)
{
    Py_buffer filtered, gray;
    Py_ssize_t width, height;
    int channels, taken = 0;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*nniw*:gray_rows", &filtered, &width, &height, &channels, &gray))
        return NULL;
    /* In this order, so no product overflows, even where Py_ssize_t has 32 bits. */
    int sound = (channels == 1 || channels == 4) && width > 0 && height > 0 && width <= MAX_SIDE && height <= MAX_SIDE
                && height <= PY_SSIZE_T_MAX / (1 + channels * width) && filtered.len == height * (1 + channels * width)
                && gray.len == height * width;
    if (sound) {
        Py_BEGIN_ALLOW_THREADS
        taken = gray_rows_of(filtered.buf, width, height, channels, gray.buf);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&filtered);
    PyBuffer_Release(&gray);
    if (!sound) {
        PyErr_SetString(PyExc_ValueError, "gray_rows: 1 or 4 channels, and buffers of the image's filtered rows "
                                          "(height x (1 + channels x width) bytes) and pixels (height x width)");
        return NULL;
    }
    return PyBool_FromLong(taken);
}

static PyMethodDef methods[] = {
    {"gray_rows", gray_rows, METH_VARARGS,
     "gray_rows(filtered, width, height, channels, gray) -> bool\n\n"
     "Unfilter an 8-bit gray (1 channel) or RGBA (4) PNG's filtered rows into gray, a writable buffer of\n"
     "height x width bytes: the gray level, or R. False if a filter type is unknown or, for RGBA, a pixel is\n"
     "not gray (R = G = B) and opaque (A = 255); gray then holds nothing to use."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_png_rows", "An 8-bit PNG's gray channel, checked and unfiltered in one pass.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__png_rows(void)
{
    return PyModule_Create(&module);
}
