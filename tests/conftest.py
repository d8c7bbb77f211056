"""Test-session setup shared by all tests. Keep it minimal."""

from __future__ import annotations

import pytest

# The MQTT broker fixtures (mqtt_broker, mqtt_broker_auth): tests/broker.py.
pytest_plugins = ["broker"]


def pytest_configure(config: pytest.Config) -> None:
    # When a hypothesis test fails, its pytest plugin imports libcst (to suggest an @example
    # patch), which imports mypy_extensions, which emits a DeprecationWarning. Under the
    # project's "warnings are errors" policy that turns a readable failure report into a
    # pytest INTERNALERROR. Ignore exactly that third-party message.
    config.addinivalue_line(
        "filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
    )
