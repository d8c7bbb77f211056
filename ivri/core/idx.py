"""Codes shared by the kernels and the Python side; plain ints so that ``@njit`` code can use them."""

# Signal-group aspects (the value in ``SignalState.state``).
RED = 0
GREEN = 1
AMBER = 2

# Modes of a signal group (``CompiledNetwork.mode``).
MODE_MOTOR = 0
MODE_BICYCLE = 1
MODE_PEDESTRIAN = 2
MODE_BUS = 3
MODE_TRAM = 4
MODE_CODES = {"motor": MODE_MOTOR, "bicycle": MODE_BICYCLE, "pedestrian": MODE_PEDESTRIAN,
              "bus": MODE_BUS, "tram": MODE_TRAM}

# Time since an event that never happened: far in the past, but finite so sums stay finite.
NEVER_S = -1.0e9
