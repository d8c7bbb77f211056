"""pytest plugin: real MQTT brokers for tests (fixtures ``mqtt_broker``, ``mqtt_broker_auth``).

Registered in ``tests/conftest.py`` with ``pytest_plugins = ["broker"]`` (tests/ is on
``sys.path`` under pytest's default import mode), or on the command line with
``-p tests.broker``. Each fixture starts its own broker on a free loopback port (mosquitto,
or amqtt when mosquitto is missing) and stops it afterwards; see :mod:`ivri.gateway.broker`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ivri.gateway.broker import LocalBroker

__all__ = [
    "ACL_FILE",
    "GATEWAY_PASSWORD",
    "GATEWAY_USER",
    "VEHICLE_PASSWORD",
    "VEHICLE_USER",
    "mqtt_broker",
    "mqtt_broker_auth",
]

# The documented ACL, so the tests check what users deploy.
ACL_FILE = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "acl"
GATEWAY_USER, GATEWAY_PASSWORD = "gateway", "gateway-test-pw"
VEHICLE_USER, VEHICLE_PASSWORD = "vehicle", "vehicle-test-pw"


@pytest.fixture
def mqtt_broker() -> Iterator[LocalBroker]:
    """A broker allowing anonymous clients; ``.host``, ``.port``, ``.url``, ``.restart()``."""
    with LocalBroker() as broker:
        yield broker


@pytest.fixture
def mqtt_broker_auth() -> Iterator[LocalBroker]:
    """A broker with users ``gateway`` and ``vehicle`` (passwords in ``broker.users``) and the
    ACL of ``deploy/mosquitto/acl``; anonymous clients may only read spatem/mapem."""
    users = {GATEWAY_USER: GATEWAY_PASSWORD, VEHICLE_USER: VEHICLE_PASSWORD}
    with LocalBroker(users=users, acl_file=ACL_FILE) as broker:
        yield broker
