"""Test helpers shipped with the package (no Django import here either).

:mod:`django_wxpay_profitsharing.testing.simulator` runs the WeChat Pay simulator as a
subprocess for tests, benchmarks and the demo.
"""

from .simulator import SimulatorError, SimulatorProcess

__all__ = ["SimulatorError", "SimulatorProcess"]
