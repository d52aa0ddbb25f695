"""Test helpers shipped with the package (no Django import here either).

:mod:`wxpay_simulator.testing.process` runs the WeChat Pay simulator as a
subprocess for tests, benchmarks and the demo; :mod:`~.inprocess` builds it inside the
test process, reached through the client's transport without sockets (imported on its
own: it loads the simulator and the client). Both drive the control surface through
:class:`~.controls.SimulatorControls`.
"""

from .process import SimulatorError, SimulatorProcess, settings_from_state_dir

__all__ = ["SimulatorError", "SimulatorProcess", "settings_from_state_dir"]
