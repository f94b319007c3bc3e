"""The project's one compiled module, optional: `pip install -e .` builds it in place where a C compiler and
Python's headers are found; without them the same work runs in NumPy (digits/imaging/canvas_png.py)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("digits.imaging._png_rows", ["digits/imaging/_png_rows.c"], optional=True)])
