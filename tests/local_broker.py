"""A real MQTT broker on a loopback port, started and stopped from Python (tests, local demos).

Tests of the gateway should talk to a real broker — reconnects, authentication and ACLs are
where MQTT code breaks, and a mock cannot show that. :class:`LocalBroker` runs ``mosquitto``
(the broker we document for deployments, see ``deploy/mosquitto/``) with a generated config on
a free port of 127.0.0.1, and can stop and restart it on the same port, so a test can pull the
broker away under a running client. Without mosquitto it falls back to the pure-Python
``amqtt`` broker in a subprocess, with the same interface.

Privacy by design: both brokers run with connection logging off, so client ids and user names
of stations never reach a log; mosquitto runs without persistence. The generated files live in
a private temporary directory that :meth:`LocalBroker.close` deletes.

::

    with LocalBroker() as broker:
        client = aiomqtt.Client(broker.host, broker.port)
        ...
        broker.restart()      # same port; clients must reconnect
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from ivri.errors import IvriError

__all__ = [
    "BrokerError",
    "LocalBroker",
    "TlsFiles",
    "find_mosquitto",
    "find_mosquitto_passwd",
    "free_port",
    "mqtt_publish_packet",
    "raw_mqtt_connect",
    "write_mosquitto_passwd",
]

Backend = Literal["auto", "mosquitto", "amqtt"]
INSTALL_HINT = "install mosquitto (apt-get install -y mosquitto) or amqtt (pip install amqtt)"


class BrokerError(IvriError):
    """The local MQTT broker could not be found, configured or started."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Server certificate and key (PEM) for a TLS listener; ``cafile`` to require client certs."""

    certfile: Path
    keyfile: Path
    cafile: Path | None = None


def _which(name: str) -> str | None:
    # /usr/sbin is not on PATH for ordinary users on Debian, but that is where mosquitto lives.
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/usr/bin")


def find_mosquitto() -> str | None:
    """Path of the ``mosquitto`` binary, or None."""
    return _which("mosquitto")


def find_mosquitto_passwd() -> str | None:
    """Path of ``mosquitto_passwd``, or None."""
    return _which("mosquitto_passwd")


def _amqtt_available() -> bool:
    try:
        import amqtt.broker  # noqa: F401
    except ImportError:
        return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def write_mosquitto_passwd(path: str | Path, users: Mapping[str, str]) -> Path:
    """Create a mosquitto password file with ``mosquitto_passwd -b`` (hashed, never plain)."""
    tool = find_mosquitto_passwd()
    if tool is None:
        raise BrokerError(f"mosquitto_passwd not found; {INSTALL_HINT}")
    path = Path(path)
    path.unlink(missing_ok=True)
    for i, (user, password) in enumerate(users.items()):
        args = [tool, "-b", *(["-c"] if i == 0 else []), str(path), user, password]
        res = subprocess.run(args, capture_output=True, text=True, check=False, timeout=30)
        if res.returncode != 0:
            raise BrokerError(f"mosquitto_passwd failed: {res.stderr.strip() or res.stdout.strip()}")
    path.chmod(0o600)
    return path


class LocalBroker:
    """An MQTT broker subprocess on ``host:port`` (a free loopback port unless given).

    ``users``: user name -> plain password; the broker gets a hashed password file made from
    it. ``password_file``: an existing mosquitto password file instead (mosquitto only).
    ``acl_file``: a mosquitto ACL file (amqtt understands its ``user``/``topic`` lines).
    ``allow_anonymous``: whether clients without a user name may connect.
    ``tls``: serve MQTT over TLS instead of plain TCP.
    ``backend``: ``"auto"`` prefers mosquitto and falls back to amqtt.
    ``config_file``: run mosquitto with this configuration file as it is, instead of a
    generated one (``port`` is then the port of one of its listeners, waited on at start).

    The broker starts on ``__enter__`` or :meth:`start`, which waits until the port accepts
    connections or raises :class:`BrokerError` with the broker's own error output.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        allow_anonymous: bool = True,
        users: Mapping[str, str] | None = None,
        password_file: str | Path | None = None,
        acl_file: str | Path | None = None,
        tls: TlsFiles | None = None,
        backend: Backend = "auto",
        start_timeout_s: float = 10.0,
        config_file: str | Path | None = None,
    ) -> None:
        if users is not None and password_file is not None:
            raise BrokerError("give users or password_file, not both")
        if config_file is not None and (port is None or backend == "amqtt"):
            raise BrokerError("config_file needs mosquitto and the port of one of its listeners")
        self.config_file = Path(config_file) if config_file is not None else None
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.allow_anonymous = allow_anonymous
        self.users = dict(users) if users is not None else None
        self.password_file = Path(password_file) if password_file is not None else None
        self.acl_file = Path(acl_file) if acl_file is not None else None
        self.tls = tls
        self.start_timeout_s = start_timeout_s
        self.backend: Literal["mosquitto", "amqtt"] = self._choose_backend(
            "mosquitto" if config_file is not None else backend)
        if self.backend == "amqtt" and self.password_file is not None:
            raise BrokerError(
                "the amqtt fallback cannot read mosquitto password files; pass users= instead, "
                f"or {INSTALL_HINT.split(' or ')[0]}"
            )
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None
        self._config: Path | None = None

    # -- public ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``mqtt://host:port`` (``mqtts://`` with TLS)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start the broker and wait until it accepts connections. Idempotent."""
        if self.running:
            return self
        if self._config is None:
            self._config = self._write_config()
        assert self._dir is not None
        self._log = Path(self._dir.name) / "broker.log"
        if self.backend == "mosquitto":
            cmd = [find_mosquitto() or "mosquitto", "-c", str(self._config)]
        else:
            cmd = [sys.executable, "-c", _AMQTT_LAUNCHER, str(self._config)]
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL). The port and config are kept."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        # amqtt shuts down cleanly on KeyboardInterrupt; mosquitto on SIGTERM.
        proc.send_signal(signal.SIGINT if self.backend == "amqtt" else signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)

    def kill(self) -> None:
        """Kill the broker abruptly (SIGKILL), as a crash would."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5.0)

    def restart(self) -> Self:
        """Stop and start again on the same port, with the same configuration."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the broker and delete its generated files."""
        self.stop()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
            self._config = None

    def output(self) -> str:
        """What the broker wrote to stdout/stderr so far (errors and warnings only)."""
        if self._log is None or not self._log.exists():
            return ""
        return self._log.read_text(encoding="utf-8", errors="replace")

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalBroker({self.url}, backend={self.backend}, running={self.running})"

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _choose_backend(backend: Backend) -> Literal["mosquitto", "amqtt"]:
        if backend in ("auto", "mosquitto") and find_mosquitto():
            return "mosquitto"
        if backend == "mosquitto":
            raise BrokerError(f"mosquitto not found on PATH or in /usr/sbin; {INSTALL_HINT}")
        if _amqtt_available():
            return "amqtt"
        raise BrokerError(
            "no MQTT broker available: mosquitto not found on PATH or in /usr/sbin and amqtt "
            f"is not installed; {INSTALL_HINT}"
        )

    def _write_config(self) -> Path:
        self._dir = tempfile.TemporaryDirectory(prefix="ivri-broker-")
        d = Path(self._dir.name)
        os.chmod(d, 0o700)
        if self.config_file is not None:
            return self.config_file
        if self.backend == "mosquitto":
            return self._write_mosquitto_config(d)
        return self._write_amqtt_config(d)

    def _write_mosquitto_config(self, d: Path) -> Path:
        lines = [
            "# generated by LocalBroker (tests/local_broker.py)",
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            "persistence false",
            # No connect/disconnect lines: they carry client ids and user names.
            "connection_messages false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0:
            # As root, mosquitto drops to user "mosquitto", which cannot read our 0700 dir.
            lines.append("user root")
        passwd = self.password_file
        if self.users is not None:
            passwd = write_mosquitto_passwd(d / "passwd", self.users)
        if passwd is not None:
            lines.append(f"password_file {passwd}")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        if self.tls is not None:
            lines += [f"certfile {self.tls.certfile}", f"keyfile {self.tls.keyfile}"]
            if self.tls.cafile is not None:
                lines += [f"cafile {self.tls.cafile}", "require_certificate true"]
        path = d / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def _write_amqtt_config(self, d: Path) -> Path:
        import yaml

        listener: dict[str, object] = {"type": "tcp", "bind": f"{self.host}:{self.port}"}
        if self.tls is not None:
            listener |= {"ssl": True, "certfile": str(self.tls.certfile), "keyfile": str(self.tls.keyfile)}
            if self.tls.cafile is not None:
                listener["cafile"] = str(self.tls.cafile)
        plugins: dict[str, object] = {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {
                "allow_anonymous": self.allow_anonymous,
            },
        }
        if self.users is not None:
            from pwdlib import PasswordHash

            hasher = PasswordHash.recommended()
            passwd = d / "passwd"
            passwd.write_text(
                "".join(f"{u}:{hasher.hash(p)}\n" for u, p in self.users.items()), encoding="utf-8"
            )
            passwd.chmod(0o600)
            plugins["amqtt.plugins.authentication.FileAuthPlugin"] = {"password_file": str(passwd)}
        if self.acl_file is not None:
            sub_acl, pub_acl = _mosquitto_acl_to_amqtt(self.acl_file, list(self.users or ()))
            plugins["amqtt.plugins.topic_checking.TopicAccessControlListPlugin"] = {
                "acl": sub_acl,  # amqtt 0.12 reads subscribe rules from "acl"
                "publish_acl": pub_acl,
            }
        path = d / "amqtt.yaml"
        path.write_text(
            yaml.safe_dump({"listeners": {"default": listener}, "plugins": plugins}), encoding="utf-8"
        )
        return path

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise BrokerError(
                    f"{self.backend} exited with code {code} while starting on {self.url}:\n"
                    f"{self.output().strip()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerError(
                    f"{self.backend} did not accept connections on {self.url} within "
                    f"{self.start_timeout_s} s:\n{self.output().strip()}"
                )
            time.sleep(0.02)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, byte = n >> 7, n & 0x7F
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _mqtt_str(s: bytes) -> bytes:
    return len(s).to_bytes(2, "big") + s


def mqtt_publish_packet(topic: str, payload: bytes) -> bytes:
    """An MQTT QoS 0 PUBLISH packet (for load generators: build once, send many)."""
    body = _mqtt_str(topic.encode()) + payload
    return b"\x30" + _varint(len(body)) + body


def raw_mqtt_connect(host: str, port: int, client_id: str, username: str | None = None,
                     password: str | None = None) -> socket.socket:
    """A minimal MQTT 3.1.1 client socket (CONNECT / CONNACK, keepalive off) for load
    generators and flood tests: they write pre-built :func:`mqtt_publish_packet` packets in
    batches, so that the load costs little CPU and the gateway under test gets the cores."""
    sock = socket.create_connection((host, port))
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = _mqtt_str(b"MQTT") + bytes([4, flags]) + (0).to_bytes(2, "big") + _mqtt_str(client_id.encode())
    if username is not None:
        body += _mqtt_str(username.encode())
    if password is not None:
        body += _mqtt_str(password.encode())
    sock.sendall(b"\x10" + _varint(len(body)) + body)
    ack = sock.recv(4)
    if len(ack) != 4 or ack[0] != 0x20 or ack[3] != 0:
        sock.close()
        raise BrokerError(f"MQTT CONNACK refused: {ack!r}")
    return sock


def _mosquitto_acl_to_amqtt(path: Path, users: list[str]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The ``user``, ``topic [read|write|readwrite] <filter>`` and ``pattern`` lines of a
    mosquitto ACL file as amqtt's subscribe and publish ACLs. Lines before any ``user`` line
    apply to anonymous clients, as in mosquitto; a ``pattern`` line applies to every user in
    ``users`` with ``%u`` replaced by the user name (``%c``, the client id, is refused)."""
    sub: dict[str, list[str]] = {}
    pub: dict[str, list[str]] = {}
    user = "anonymous"
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word == "user":
            user = rest
            continue
        if word not in ("topic", "pattern"):
            raise BrokerError(f"{path}: the amqtt fallback does not support {word!r} lines")
        access, _, topic = rest.partition(" ")
        if access not in ("read", "write", "readwrite", "deny"):
            access, topic = "readwrite", rest
        topic = topic.strip()
        if word == "pattern" and "%c" in topic:
            raise BrokerError(f"{path}: the amqtt fallback does not support %c patterns")
        targets = [(u, topic.replace("%u", u)) for u in users] if word == "pattern" else [(user, topic)]
        for who, filt in targets:
            sub.setdefault(who, [])
            pub.setdefault(who, [])
            if access in ("read", "readwrite"):
                sub[who].append(filt)
            if access in ("write", "readwrite"):
                pub[who].append(filt)
    return sub, pub


# Runs amqtt's broker with logging at WARNING: amqtt logs client ids at INFO, and those
# identify stations. Stops cleanly on SIGINT/SIGTERM.
_AMQTT_LAUNCHER = """
import asyncio, logging, signal, sys
from amqtt.broker import Broker
from amqtt.utils import read_yaml_config

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

async def main():
    broker = Broker(read_yaml_config(sys.argv[1]))
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()

asyncio.run(main())
"""
