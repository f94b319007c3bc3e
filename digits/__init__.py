"""Handwritten digit recognition.

Three parts, each a subpackage, with one rule between them (checked in CI by import-linter, see
pyproject.toml): `imaging` turns any upload into the 28x28 digit the model reads and imports nothing else
of ours; `serving` (the web service) and `training` (the trainer) each stand on `imaging` and on
`model_file`, and never on each other.
"""

import pathlib

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent  # The checkout: model, data cache, reports.
