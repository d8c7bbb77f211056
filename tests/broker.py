"""pytest plugin: real MQTT brokers for tests (fixtures ``mqtt_broker``, ``mqtt_broker_auth``).

Registered in ``tests/conftest.py`` with ``pytest_plugins = ["broker"]`` (tests/ is on
``sys.path`` under pytest's default import mode), or on the command line with
``-p tests.broker``. Each fixture starts its own broker on a free loopback port (mosquitto,
or amqtt when mosquitto is missing) and stops it afterwards; see tests/local_broker.py.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from local_broker import LocalBroker, free_port, write_mosquitto_passwd

__all__ = [
    "ACL_FILE",
    "GATEWAY_PASSWORD",
    "GATEWAY_USER",
    "SHIPPED_DIR",
    "VEHICLE_PASSWORD",
    "VEHICLE_USER",
    "ShippedBroker",
    "mqtt_broker",
    "mqtt_broker_auth",
    "shipped_broker",
    "shipped_config_copy",
]

# The documented ACL and config, so the tests check what users deploy.
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto"
ACL_FILE = SHIPPED_DIR / "acl"
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
    ACL of ``deploy/mosquitto/acl`` (a device writes only under its own login; anonymous
    clients get nothing)."""
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


# The only lines of the shipped mosquitto.conf that a test may change: ports and file paths.
_SUBSTITUTABLE = re.compile(r"^(listener \d+( \S+)?|password_file \S+|acl_file \S+|certfile \S+|keyfile \S+)$")


def shipped_config_copy(d: Path, gateway_port: int, device_port: int, passwd: Path, cert: Path,
                        key: Path) -> Path:
    """The shipped ``deploy/mosquitto/mosquitto.conf`` with only its ports and file paths
    replaced (the ACL is the shipped file itself); every other line stays byte-identical
    (checked here). As root, ``user root`` is appended (mosquitto would drop to a user that
    cannot read the test's files)."""
    shipped = (SHIPPED_DIR / "mosquitto.conf").read_text(encoding="utf-8")
    out = []
    for line in shipped.splitlines():
        new = line
        if line == "listener 1883 127.0.0.1":
            new = f"listener {gateway_port} 127.0.0.1"
        elif line == "listener 8883":
            new = f"listener {device_port} 127.0.0.1"  # loopback in tests
        elif line.startswith("password_file "):
            new = f"password_file {passwd}"
        elif line.startswith("acl_file "):
            new = f"acl_file {ACL_FILE}"
        elif line.startswith("certfile "):
            new = f"certfile {cert}"
        elif line.startswith("keyfile "):
            new = f"keyfile {key}"
        assert new == line or _SUBSTITUTABLE.match(line), f"test would change {line!r}"
        out.append(new)
    if os.geteuid() == 0:
        out.append("user root")
    path = d / "mosquitto.conf"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


@dataclass
class ShippedBroker:
    """mosquitto running the shipped config: ``broker`` (the gateway's loopback listener),
    ``device_port`` (the TLS listener), ``tls`` (a client context trusting the test CA),
    ``users`` (login -> password: ``gateway`` and a few devices)."""

    broker: LocalBroker
    device_port: int
    tls: ssl.SSLContext
    users: dict[str, str]


SHIPPED_USERS = {"gateway": "gw-test-pw", "amb-7f3a": "amb-pw", "bus-19c2": "bus-pw",
                 "bike-5d11": "bike-pw", "mallory": "mallory-pw"}


@pytest.fixture(scope="module")
def shipped_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShippedBroker]:
    """mosquitto with the shipped config and ACL (see :func:`shipped_config_copy`); one per
    test module (tests must not leave retained messages behind)."""
    tmp_path = tmp_path_factory.mktemp("shipped-broker")
    cert, key = self_signed_cert(tmp_path)
    passwd = write_mosquitto_passwd(tmp_path / "passwd", SHIPPED_USERS)
    gw_port, dev_port = free_port(), free_port()
    conf = shipped_config_copy(tmp_path, gw_port, dev_port, passwd, cert, key)
    with LocalBroker(config_file=conf, port=gw_port) as broker:
        broker.users = dict(SHIPPED_USERS)
        yield ShippedBroker(broker, dev_port, ssl.create_default_context(cafile=str(cert)), dict(SHIPPED_USERS))
