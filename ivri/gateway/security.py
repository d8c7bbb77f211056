"""Authorisation of priority requests: who may ask an intersection for priority, and how often.

A priority request (an SREM from an ambulance, a bus, a cyclist's app) changes what the
lights do for everybody else, so the gateway must know that the sender is entitled to the
priority class it asks for, that the request is fresh, that it is not a recording played back,
and that one sender cannot flood the controller. This module does that in the spirit of the
authorisation tickets of ETSI TS 103 097, deliberately simplified:

* every sender holds an ECDSA P-256 key pair; the road authority puts the public key, under
  a *key id*, in a :class:`TrustStore` together with the priority classes that key may request;
* the sender wraps each request in a :class:`SignedRequest`: the payload, the key id, a
  timestamp, a sequence number that grows with every request, and a signature (SHA-256,
  raw ``r || s``, 64 bytes, as in IEEE 1609.2) over a canonical byte string of all four;
* :class:`RequestVerifier` checks one envelope and returns a :class:`Verdict`: accepted, or
  the one :class:`RefusalReason` why not. It never raises on bad input, because the input
  comes from the radio or the network and anybody can send anything.

Privacy by design: key ids identify stations or app installations. They are never logged and
never written to disk here; the verifier keeps per-key replay and rate state in memory only,
and forgets a key as soon as forgetting cannot weaken a check. The refusal counters are totals
per reason, not per key.

Trust store file (TOML; the same structure in JSON)::

    [[keys]]
    key_id = "ambulance-rav-07"
    classes = ["emergency"]
    public_key_pem = \"\"\"
    -----BEGIN PUBLIC KEY-----
    ...
    -----END PUBLIC KEY-----
    \"\"\"

    [[keys]]
    key_id = "bus-depot-3"
    classes = ["public_transport"]
    public_key_file = "keys/bus-depot-3.pem"     # relative to the trust store file

Trust store directory: one sub-directory per priority class holding ``<key_id>.pem`` files, so
an operator grants a class by copying a file (and revokes it by deleting one)::

    trust/emergency/ambulance-rav-07.pem
    trust/public_transport/bus-depot-3.pem
    trust/public_transport/ambulance-rav-07.pem   # same key, a second class
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, get_args

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ivri.config import load_model_file
from ivri.errors import ConfigError

__all__ = [
    "PRIORITY_CLASSES",
    "PriorityClass",
    "RefusalReason",
    "RequestVerifier",
    "SignedRequest",
    "TrustStore",
    "TrustedKey",
    "Verdict",
    "canonical_bytes",
    "generate_key_pair",
    "load_private_key_pem",
    "load_public_key_pem",
    "sign_request",
    "write_private_key_pem",
    "write_public_key_pem",
    "write_trust_dir_entry",
]

PriorityClass = Literal["emergency", "public_transport", "freight", "cyclist_app", "pedestrian_app"]
PRIORITY_CLASSES: frozenset[str] = frozenset(get_args(PriorityClass))

# Key ids are part of the signed bytes and file names; no "|" keeps the canonical form
# unambiguous and no "/" keeps them from escaping a trust directory.
KEY_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
_KEY_ID_RE = re.compile(KEY_ID_PATTERN)
# A request is a few hundred bytes; the limit bounds the hashing work one envelope can cause.
MAX_PAYLOAD_BYTES = 16 * 1024
_SIGNATURE_BYTES = 64  # P-256: 32-byte r || 32-byte s
_INT64_MAX = 2**63 - 1
_DOMAIN = b"ivri-priority-request-v1"  # never valid as the signed bytes of another protocol
_CURVE = ec.SECP256R1()
_HASH = ec.ECDSA(hashes.SHA256())


# --------------------------------------------------------------------------------- envelope


class SignedRequest(BaseModel):
    """A priority request as it travels: payload plus who signed it, when, and in what order.

    In JSON (``model_dump_json`` / ``model_validate_json``) the two byte fields are base64.
    Strict types: a timestamp sent as a string is malformed, not silently converted.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, ser_json_bytes="base64", val_json_bytes="base64"
    )

    payload: bytes = Field(max_length=MAX_PAYLOAD_BYTES)
    key_id: str = Field(pattern=KEY_ID_PATTERN)
    timestamp_ms: int = Field(ge=0, le=_INT64_MAX, description="sender's clock, ms since the Unix epoch")
    sequence: int = Field(ge=0, le=_INT64_MAX, description="grows with every request of this key")
    signature: bytes = Field(max_length=1024, description="ECDSA P-256 raw r||s (64 bytes)")


def canonical_bytes(key_id: str, timestamp_ms: int, sequence: int, payload: bytes) -> bytes:
    """The exact bytes that are signed: ``DOMAIN|key_id|timestamp|sequence|payload``.

    Key ids cannot contain ``|`` and the numbers are decimal, so the split is unambiguous;
    the domain prefix stops a signature made for something else from being valid here.
    """
    return b"|".join(
        (_DOMAIN, key_id.encode("ascii"), str(timestamp_ms).encode(), str(sequence).encode(), payload)
    )


def sign_request(
    payload: bytes,
    private_key: ec.EllipticCurvePrivateKey,
    key_id: str,
    timestamp_ms: int,
    sequence: int,
) -> SignedRequest:
    """Sign ``payload`` with ``private_key`` (P-256) and wrap it in a :class:`SignedRequest`."""
    if not isinstance(private_key.curve, ec.SECP256R1):
        raise TypeError("priority requests are signed with ECDSA P-256 keys only")
    der = private_key.sign(canonical_bytes(key_id, timestamp_ms, sequence, payload), _HASH)
    r, s = decode_dss_signature(der)
    return SignedRequest(
        payload=payload,
        key_id=key_id,
        timestamp_ms=timestamp_ms,
        sequence=sequence,
        signature=r.to_bytes(32, "big") + s.to_bytes(32, "big"),
    )


# ------------------------------------------------------------------------------------- keys


def generate_key_pair() -> tuple[ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey]:
    """A fresh P-256 key pair (for tests, and for the key-issuing CLI)."""
    private_key = ec.generate_private_key(_CURVE)
    return private_key, private_key.public_key()


def write_private_key_pem(
    path: str | Path, key: ec.EllipticCurvePrivateKey, password: bytes | None = None
) -> Path:
    """Write a private key as PKCS#8 PEM, readable by the owner only (mode 0600)."""
    path = Path(path)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)  # touch keeps the mode of an existing file
    path.write_bytes(pem)
    return path


def write_public_key_pem(path: str | Path, key: ec.EllipticCurvePublicKey) -> Path:
    """Write a public key as SubjectPublicKeyInfo PEM."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return path


def write_trust_dir_entry(
    trust_dir: str | Path, key_id: str, key: ec.EllipticCurvePublicKey, classes: Iterable[str]
) -> list[Path]:
    """Grant ``key_id`` the given classes in a trust directory (one PEM per class directory)."""
    _check_key_id(key_id)
    written = []
    for cls in sorted(set(classes)):
        _check_class(cls)
        written.append(write_public_key_pem(Path(trust_dir) / cls / f"{key_id}.pem", key))
    return written


def load_private_key_pem(path: str | Path, password: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    """Read a P-256 private key from a PEM file; :class:`ConfigError` if it is anything else."""
    path = Path(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"private key {path} cannot be read: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(f"private key {path} is not an ECDSA P-256 key")
    return key


def load_public_key_pem(pem: bytes | str, source: str = "<pem>") -> ec.EllipticCurvePublicKey:
    """Parse a P-256 public key from PEM text; :class:`ConfigError` naming ``source`` if not."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data.strip() + b"\n")
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{source}: not a PEM public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(f"{source}: not an ECDSA P-256 public key")
    return key


def _check_key_id(key_id: str) -> None:
    if not _KEY_ID_RE.match(key_id):
        raise ConfigError(f"key id {key_id!r} must match {KEY_ID_PATTERN}")


def _check_class(cls: str) -> None:
    if cls not in PRIORITY_CLASSES:
        raise ConfigError(f"unknown priority class {cls!r} (known: {', '.join(sorted(PRIORITY_CLASSES))})")


# ------------------------------------------------------------------------------- trust store


class _Strict(BaseModel):
    # A typo in a trust store key must be an error: a silently ignored field could grant
    # or hide a privilege.
    model_config = ConfigDict(extra="forbid", frozen=True)


class _KeyEntry(_Strict):
    key_id: str = Field(pattern=KEY_ID_PATTERN)
    classes: tuple[PriorityClass, ...] = Field(min_length=1)
    public_key_pem: str | None = None
    public_key_file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _KeyEntry:
        if (self.public_key_pem is None) == (self.public_key_file is None):
            raise ValueError(f"key {self.key_id!r}: give exactly one of public_key_pem, public_key_file")
        return self


class _TrustFile(_Strict):
    keys: tuple[_KeyEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """One trusted public key and the priority classes it may request."""

    key_id: str
    public_key: ec.EllipticCurvePublicKey
    classes: frozenset[str]


class TrustStore:
    """The public keys the gateway trusts, by key id, each with its permitted priority classes."""

    def __init__(self, keys: Iterable[TrustedKey] = ()) -> None:
        self._keys: dict[str, TrustedKey] = {}
        for k in keys:
            self.add(k.key_id, k.public_key, k.classes)

    def add(self, key_id: str, public_key: ec.EllipticCurvePublicKey, classes: Iterable[str]) -> None:
        """Trust ``public_key`` under ``key_id`` for ``classes``; :class:`ConfigError` if invalid."""
        _check_key_id(key_id)
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, ec.SECP256R1
        ):
            raise ConfigError(f"key {key_id!r}: not an ECDSA P-256 public key")
        cls_set = frozenset(classes)
        if not cls_set:
            raise ConfigError(f"key {key_id!r}: no priority classes given")
        for cls in cls_set:
            _check_class(cls)
        old = self._keys.get(key_id)
        if old is not None:
            if _spki(old.public_key) != _spki(public_key):
                raise ConfigError(f"key id {key_id!r} is given two different public keys")
            cls_set |= old.classes
        self._keys[key_id] = TrustedKey(key_id, public_key, cls_set)

    def get(self, key_id: str) -> TrustedKey | None:
        """The trusted key of ``key_id``, or None."""
        return self._keys.get(key_id)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def key_ids(self) -> list[str]:
        """All trusted key ids, sorted."""
        return sorted(self._keys)

    @classmethod
    def load(cls, path: str | Path) -> TrustStore:
        """Read a trust store from a directory, a ``.toml`` or a ``.json`` file (see module doc)."""
        path = Path(path)
        if path.is_dir():
            return cls.from_directory(path)
        if path.is_file():
            return cls.from_file(path)
        raise ConfigError(f"trust store {path} does not exist")

    @classmethod
    def from_directory(cls, path: str | Path) -> TrustStore:
        """``<dir>/<priority class>/<key_id>.pem``; unknown class directories are an error."""
        path = Path(path)
        store = cls()
        for sub in sorted(p for p in path.iterdir() if not p.name.startswith(".")):
            if not sub.is_dir():
                raise ConfigError(
                    f"trust store {path}: {sub.name} is not a class directory "
                    "(expected <class>/<key_id>.pem)"
                )
            _check_class(sub.name)
            for pem in sorted(sub.glob("*.pem")):
                key = load_public_key_pem(pem.read_bytes(), str(pem))
                store.add(pem.stem, key, [sub.name])
        return store

    @classmethod
    def from_file(cls, path: str | Path) -> TrustStore:
        """A TOML or JSON file with a ``keys`` list (see module doc)."""
        path = Path(path)
        parsed = load_model_file(path, _TrustFile, "trust store", formats=(".toml", ".json"))
        store = cls()
        for entry in parsed.keys:
            source = f"{path}: key {entry.key_id!r}"
            if entry.public_key_pem is not None:
                pem: bytes | str = entry.public_key_pem
            else:
                assert entry.public_key_file is not None
                key_path = path.parent / entry.public_key_file
                try:
                    pem = key_path.read_bytes()
                except OSError as exc:
                    raise ConfigError(f"{source}: cannot read {key_path}: {exc}") from None
            store.add(entry.key_id, load_public_key_pem(pem, source), entry.classes)
        return store


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# ---------------------------------------------------------------------------------- verifier


class RefusalReason(StrEnum):
    """Why a request was refused. Values are stable: they are used as metric labels."""

    MALFORMED = "malformed"
    UNSIGNED = "unsigned"
    UNKNOWN_KEY = "unknown_key"
    STALE_OR_FUTURE = "stale_or_future"
    BAD_SIGNATURE = "bad_signature"
    NOT_AUTHORISED_FOR_CLASS = "not_authorised_for_class"
    REPLAYED = "replayed"
    OVER_RATE = "over_rate"


ACCEPTED = "accepted"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one verification. ``payload`` is set only when accepted, so that code
    acting on a request can only ever get at bytes that were verified."""

    reason: RefusalReason | None = None
    payload: bytes | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None

    def __bool__(self) -> bool:
        return self.accepted


@dataclass(slots=True)
class _KeyState:
    last_sequence: int
    max_timestamp_ms: int  # newest timestamp accepted; replay state is needed until it is stale
    tokens: float
    tokens_at_ms: int


class RequestVerifier:
    """Checks signed priority requests against a :class:`TrustStore`; keeps replay and rate state.

    Checks in order, cheapest and stateless first, and state is only changed by an accepted
    request, so that forged or replayed traffic cannot use up a genuine sender's rate budget
    or move its sequence number:

    malformed / unsigned -> unknown key -> timestamp window -> signature -> class ->
    replay (sequence must exceed the last accepted one) -> rate (token bucket per key).

    ``window_s``: how far the envelope's timestamp may lie from ``now_ms`` either way.
    ``max_rate_per_s`` and ``burst``: the token bucket of each key.

    Per-key state lives in memory only and is bounded: it exists only for keys in the trust
    store that sent a valid request, and a key's state is dropped once the newest request it
    guards against is outside the window and its bucket has refilled — dropping it then
    changes no future verdict.
    """

    def __init__(
        self,
        trust_store: TrustStore,
        *,
        window_s: float = 5.0,
        max_rate_per_s: float = 2.0,
        burst: int = 5,
    ) -> None:
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window_s must be a positive number, not {window_s!r}")
        if not (math.isfinite(max_rate_per_s) and max_rate_per_s > 0):
            raise ValueError(f"max_rate_per_s must be a positive number, not {max_rate_per_s!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self.trust_store = trust_store
        self.window_ms = round(window_s * 1000)
        self.max_rate_per_s = float(max_rate_per_s)
        self.burst = int(burst)
        self.counts: Counter[str] = Counter()
        """Number of verdicts by outcome: ``"accepted"`` and each :class:`RefusalReason` value."""
        self._state: dict[str, _KeyState] = {}
        self._last_sweep_ms: int | None = None

    # -- public ----------------------------------------------------------------------------

    def verify(self, envelope: object, required_class: str, now_ms: int) -> Verdict:
        """Check ``envelope`` for a request of ``required_class`` at time ``now_ms``.

        ``envelope`` may be a :class:`SignedRequest`, its JSON (``bytes``/``str``), a mapping
        in JSON form (base64 byte fields), or ``None``. Never raises for any envelope.
        """
        try:
            verdict = self._verify(envelope, required_class, int(now_ms))
        except Exception:  # noqa: BLE001  (last line of defence: bad input must never crash)
            verdict = Verdict(RefusalReason.MALFORMED)
        self.counts[ACCEPTED if verdict.reason is None else verdict.reason.value] += 1
        return verdict

    @property
    def tracked_keys(self) -> int:
        """How many keys currently have replay/rate state (for tests and metrics; no ids)."""
        return len(self._state)

    def forget_all(self) -> None:
        """Drop all per-key state (e.g. on a controlled restart)."""
        self._state.clear()

    # -- internals -------------------------------------------------------------------------

    def _verify(self, envelope: object, required_class: str, now_ms: int) -> Verdict:
        self._maybe_sweep(now_ms)
        parsed = _parse(envelope)
        if isinstance(parsed, RefusalReason):
            return Verdict(parsed)
        req = parsed
        if not req.signature:
            return Verdict(RefusalReason.UNSIGNED)
        trusted = self.trust_store.get(req.key_id)
        if trusted is None:
            return Verdict(RefusalReason.UNKNOWN_KEY)
        if abs(req.timestamp_ms - now_ms) > self.window_ms:
            return Verdict(RefusalReason.STALE_OR_FUTURE)
        if not _signature_ok(trusted.public_key, req):
            return Verdict(RefusalReason.BAD_SIGNATURE)
        if required_class not in trusted.classes:
            return Verdict(RefusalReason.NOT_AUTHORISED_FOR_CLASS)

        state = self._state.get(req.key_id)
        if state is not None and req.sequence <= state.last_sequence:
            return Verdict(RefusalReason.REPLAYED)
        tokens = self._refilled(state, now_ms)
        if tokens < 1.0:
            return Verdict(RefusalReason.OVER_RATE)
        if state is None:
            self._state[req.key_id] = _KeyState(req.sequence, req.timestamp_ms, tokens - 1.0, now_ms)
        else:
            state.last_sequence = req.sequence
            state.max_timestamp_ms = max(state.max_timestamp_ms, req.timestamp_ms)
            state.tokens = tokens - 1.0
            state.tokens_at_ms = now_ms
        return Verdict(None, req.payload)

    def _refilled(self, state: _KeyState | None, now_ms: int) -> float:
        if state is None:
            return float(self.burst)
        elapsed_s = max(0, now_ms - state.tokens_at_ms) / 1000.0
        return min(float(self.burst), state.tokens + elapsed_s * self.max_rate_per_s)

    def _maybe_sweep(self, now_ms: int) -> None:
        # At most once per window, so that verification stays O(1) amortised.
        if self._last_sweep_ms is not None and 0 <= now_ms - self._last_sweep_ms < self.window_ms:
            return
        self._last_sweep_ms = now_ms
        stale = [
            key_id
            for key_id, st in self._state.items()
            # Every envelope with sequence <= last_sequence that could still pass the timestamp
            # check has timestamp >= now - window; all accepted ones had timestamp <=
            # max_timestamp_ms. Once max_timestamp_ms < now - window, any replay is stale anyway.
            if st.max_timestamp_ms < now_ms - self.window_ms
            and self._refilled(st, now_ms) >= self.burst
        ]
        for key_id in stale:
            del self._state[key_id]


def _parse(envelope: object) -> SignedRequest | RefusalReason:
    if envelope is None:
        return RefusalReason.UNSIGNED
    if isinstance(envelope, SignedRequest):
        return envelope
    if isinstance(envelope, Mapping):
        if "signature" not in envelope:
            return RefusalReason.UNSIGNED
        try:
            envelope = json.dumps(dict(envelope))
        except (TypeError, ValueError):
            return RefusalReason.MALFORMED
    if isinstance(envelope, bytes | bytearray | memoryview | str):
        if len(envelope) > 4 * MAX_PAYLOAD_BYTES:
            return RefusalReason.MALFORMED
        try:
            data: Any = json.loads(envelope)
        except (ValueError, UnicodeDecodeError):
            return RefusalReason.MALFORMED
        if isinstance(data, dict) and "signature" not in data:
            return RefusalReason.UNSIGNED
        try:
            return SignedRequest.model_validate_json(envelope)
        except ValidationError:
            return RefusalReason.MALFORMED
    return RefusalReason.MALFORMED


def _signature_ok(public_key: ec.EllipticCurvePublicKey, req: SignedRequest) -> bool:
    sig = req.signature
    if len(sig) != _SIGNATURE_BYTES:
        return False
    r = int.from_bytes(sig[:32], "big")
    s = int.from_bytes(sig[32:], "big")
    if r == 0 or s == 0:
        return False
    try:
        public_key.verify(
            encode_dss_signature(r, s),
            canonical_bytes(req.key_id, req.timestamp_ms, req.sequence, req.payload),
            _HASH,
        )
    except (InvalidSignature, ValueError):
        return False
    return True
