"""The service as it was first written, rebuilt to be measured beside ours: `gunicorn -w 2 benchmarks.original_app:app`.

A Flask app that reads the upload with Pillow, converts it to a 28x28 grayscale image, and calls Keras'
`model.predict` on it per request, with a 784-512-512-10 sigmoid MLP loaded at import, as the original did.
Its weights are Keras' random initialisation (seeded), not trained: the speed does not depend on them,
and its answers are not checked.
"""

import io

import flask
import keras
import numpy as np
from PIL import Image


def build_model():
    """The original network: 784 pixels, two hidden layers of 512 sigmoid units, 10 softmax outputs."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input(shape=(784,)),
        keras.layers.Dense(512, activation="sigmoid"),
        keras.layers.Dense(512, activation="sigmoid"),
        keras.layers.Dense(10, activation="softmax"),
    ])


app = flask.Flask(__name__)
model = build_model()


@app.post("/upload")
def upload():
    """Decode, shrink to 28x28 gray, predict, answer the digit as a JSON string."""
    image = Image.open(io.BytesIO(flask.request.files["file"].read())).convert("L").resize((28, 28))
    pixels = np.asarray(image, dtype=np.float32).reshape(1, 784) / 255.0
    return flask.jsonify(str(int(np.argmax(model.predict(pixels, verbose=0)))))


@app.get("/ready")
def ready():
    """Ready once imported: the model is built at import."""
    return flask.jsonify(ready=True)
