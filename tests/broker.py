"""pytest plugin: real MQTT brokers for tests (fixtures ``mqtt_broker``, ``mqtt_broker_auth``).

Registered in ``tests/conftest.py`` with ``pytest_plugins = ["broker"]`` (tests/ is on
``sys.path`` under pytest's default import mode), or on the command line with
``-p tests.broker``. Each fixture starts its own broker on a free loopback port (mosquitto,
or amqtt when mosquitto is missing) and stops it afterwards; see :mod:`ivri.gateway.broker`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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


def self_signed_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files in ``tmp_path``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "server.crt", tmp_path / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path
