"""The one error hierarchy of ivri.

::

    IvriError                  anything ivri raises on purpose; the CLI prints it as one line
    ├── ConfigError            a configuration, scenario or controller name that is wrong
    ├── NetworkError           a SUMO network or .sumocfg that is missing, corrupt or unusable
    ├── SimulationError        SUMO failed while running
    └── SafetyViolation        the core caught a state that breaks a safety rule (never expected)
"""

from __future__ import annotations

__all__ = ["ConfigError", "IvriError", "NetworkError", "SafetyViolation", "SimulationError"]


class IvriError(Exception):
    """Base class of every error that ivri raises deliberately."""


class ConfigError(IvriError):
    """A configuration value, file, scenario name or controller name is wrong."""


class NetworkError(IvriError):
    """A SUMO network or configuration file is missing, corrupt or has no traffic lights."""


class SimulationError(IvriError):
    """SUMO could not be started or stopped with an error."""


class SafetyViolation(IvriError):
    """The core's state breaks a safety rule; raised by checks, never expected in operation."""
