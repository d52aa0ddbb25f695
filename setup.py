"""Shim for tools that still call ``setup.py``; the metadata lives in pyproject.toml.

Everything declarative (name, version, dependencies, extras, entry points) is in the
``[project]`` table, which setuptools reads itself. This file only lets older workflows
(``python setup.py ...``, editable installs through pip versions that expect it) keep
working; nothing should be added here.
"""

from setuptools import setup

setup()
