"""ivri: an open engine for intelligent traffic lights (iVRI)."""

from ivri.config import IntersectionConfig, NetworkConfig, SignalGroupConfig, load_network_config
from ivri.errors import ConfigError, IvriError, NetworkError, SafetyViolation, SimulationError

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "IntersectionConfig",
    "IvriError",
    "NetworkConfig",
    "NetworkError",
    "SafetyViolation",
    "SignalGroupConfig",
    "SimulationError",
    "__version__",
    "load_network_config",
]
