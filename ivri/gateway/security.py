"""Authorisation of priority requests: who may ask an intersection for priority, and how often.

A priority request (an SREM from an ambulance, a bus, a cyclist's app) changes what the
lights do for everybody else, so the gateway must know that the sender is entitled to the
priority class it asks for *at this intersection, now*, that the request is fresh, that it is
not a recording played back, and that nobody can make the gateway do unbounded work.

The permission model follows the authorisation tickets of ETSI TS 103 097 / the EU CCMS
(:mod:`ivri.gateway.tickets`): the trust store holds **issuers** (a road authority's local
root keys) and a **revocation list**; every request carries the sender's ticket and is signed
with the key the ticket names. :class:`SignedRequest` is the envelope::

    {"payload": base64 SREM, "ticket": {...ticket...}, "timestamp_ms": int, "sequence": int,
     "signature": base64 r||s}

signed over ``b"ivri-priority-request-v2|" issuer "|" ticket_id "|" timestamp "|" sequence "|" payload``.

:class:`RequestVerifier` checks in two steps, cheapest first, and changes state only for a
request that passes everything, so that forged or replayed traffic cannot use up a genuine
sender's budget or move its sequence number:

1. :meth:`~RequestVerifier.authenticate` (before the SREM is decoded): envelope shape ->
   signed -> issuer known -> ticket not revoked -> ticket valid now -> ticket covers this
   intersection -> timestamp within the window -> sequence not replayed -> the sender's
   failed-verification budget (per MQTT client and per client and ticket) -> the issuer's
   signature on the ticket (checked once per ticket, then cached) -> the request signature.
   Only the last two cost real work (about 0.1 ms each). Every refusal here spends the
   sending client's budget (a signature failure also that of the client and ticket), and a
   client without budget is refused before its request is even parsed
   (:meth:`~RequestVerifier.client_throttled`).
2. :meth:`~RequestVerifier.authorise` (after decoding): the requested class is in the ticket,
   the SREM's header station id and requestor id are the ticket's station id, the sequence
   is new, and the ticket's request rate (token bucket) allows it. Then the replay state is
   stored (:class:`ReplayStore`: persisted, so that a restart does not reopen old requests).

Privacy by design: tickets and station ids are pseudonyms, never logged. The replay state
on disk holds only a hash of (issuer, ticket id), a sequence number and a timestamp, and
forgets each entry once its requests are stale. Refusal counters are totals per reason.

Trust store file (TOML; the same structure in JSON)::

    revocation_list = "revoked.txt"        # optional; relative to this file
    [[issuers]]
    issuer_id = "nl-ut-root"
    public_key_file = "issuers/nl-ut-root.pem"   # or public_key_pem = \"\"\"...\"\"\"

Trust store directory: ``<dir>/issuers/<issuer_id>.pem`` and optionally ``<dir>/revoked.txt``.

Revocation list: one ``<issuer_id>/<ticket_id>`` per line (``#`` comments, blank lines
ignored). The gateway checks the file's modification time at most once a second and reloads
it without a restart; a file that has become unreadable or invalid keeps the last good list
(and is logged), so that an editing mistake never un-revokes a ticket.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ivri.config import load_model_file
from ivri.errors import ConfigError
from ivri.gateway.tickets import (
    ID_PATTERN,
    PRIORITY_CLASSES,
    AuthorisationTicket,
    PriorityClass,
    TicketKeyCache,
    check_id,
    holder_key,
    raw_signature,
    spki_der,
    verify_raw_signature,
)

__all__ = [
    "PRIORITY_CLASSES",
    "PriorityClass",
    "RefusalReason",
    "ReplayStore",
    "RequestVerifier",
    "RevocationList",
    "SignedRequest",
    "TokenBuckets",
    "TrustStore",
    "Verdict",
    "canonical_bytes",
    "generate_key_pair",
    "load_private_key_pem",
    "load_public_key_pem",
    "sign_request",
    "write_private_key_pem",
    "write_public_key_pem",
]

log = logging.getLogger("ivri.gateway")

# A request is a few hundred bytes; the limit bounds the hashing work one envelope can cause.
MAX_PAYLOAD_BYTES = 16 * 1024
_INT64_MAX = 2**63 - 1
_DOMAIN = b"ivri-priority-request-v2"  # never valid as the signed bytes of another protocol
_CURVE = ec.SECP256R1()


# --------------------------------------------------------------------------------- envelope


class SignedRequest(BaseModel):
    """A priority request as it travels: payload, the sender's ticket, when, in what order, signature.

    In JSON (``model_dump_json`` / ``model_validate_json``) the byte fields are base64.
    Strict types: a timestamp sent as a string is malformed, not silently converted.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, ser_json_bytes="base64", val_json_bytes="base64"
    )

    payload: bytes = Field(max_length=MAX_PAYLOAD_BYTES)
    ticket: AuthorisationTicket
    timestamp_ms: int = Field(ge=0, le=_INT64_MAX, description="sender's clock, ms since the Unix epoch")
    sequence: int = Field(ge=0, le=_INT64_MAX, description="grows with every request of this ticket")
    signature: bytes = Field(max_length=1024, description="ECDSA P-256 raw r||s (64 bytes)")


def canonical_bytes(issuer: str, ticket_id: str, timestamp_ms: int, sequence: int, payload: bytes) -> bytes:
    """The exact bytes the sender signs: ``DOMAIN|issuer|ticket_id|timestamp|sequence|payload``.

    Ids cannot contain ``|`` and the numbers are decimal, so the split is unambiguous; the
    domain prefix stops a signature made for something else from being valid here.
    """
    return b"|".join((_DOMAIN, issuer.encode("ascii"), ticket_id.encode("ascii"),
                      str(timestamp_ms).encode(), str(sequence).encode(), payload))


def sign_request(
    payload: bytes,
    private_key: ec.EllipticCurvePrivateKey,
    ticket: AuthorisationTicket,
    timestamp_ms: int,
    sequence: int,
) -> SignedRequest:
    """Sign ``payload`` with the holder key of ``ticket`` and wrap both in a :class:`SignedRequest`."""
    data = canonical_bytes(ticket.issuer, ticket.ticket_id, timestamp_ms, sequence, payload)
    return SignedRequest(payload=payload, ticket=ticket, timestamp_ms=timestamp_ms, sequence=sequence,
                         signature=raw_signature(private_key, data))


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




# ------------------------------------------------------------------------------- trust store


class _Strict(BaseModel):
    # A typo in a trust store key must be an error: a silently ignored field could grant
    # or hide a privilege.
    model_config = ConfigDict(extra="forbid", frozen=True)


class _IssuerEntry(_Strict):
    issuer_id: str = Field(pattern=ID_PATTERN)
    public_key_pem: str | None = None
    public_key_file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _IssuerEntry:
        if (self.public_key_pem is None) == (self.public_key_file is None):
            raise ValueError(f"issuer {self.issuer_id!r}: give exactly one of public_key_pem, public_key_file")
        return self


class _TrustFile(_Strict):
    issuers: tuple[_IssuerEntry, ...] = ()
    revocation_list: str | None = None


def _parse_revocations(text: str, source: str) -> frozenset[str]:
    out = set()
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        issuer, sep, ticket = line.partition("/")
        try:
            if not sep:
                raise ConfigError("")
            check_id(issuer, "issuer id")
            check_id(ticket, "ticket id")
        except ConfigError:
            raise ConfigError(f"{source} line {n}: expected <issuer_id>/<ticket_id>, got {line[:80]!r}") from None
        out.add(line)
    return frozenset(out)


class RevocationList:
    """Revoked tickets, from a text file that is reloaded when it changes (no restart).

    ``check_every_s``: how often (at most) the file's modification time is looked at.
    """

    def __init__(self, path: str | Path | None = None, *, check_every_s: float = 1.0) -> None:
        self.path = Path(path) if path is not None else None
        self.check_every_s = check_every_s
        self.reloads = 0
        self.errors = 0
        self._revoked: frozenset[str] = frozenset()
        self._stamp: tuple[int, int] | None = None
        self._checked_at = -math.inf
        if self.path is not None:
            if not self.path.is_file():
                raise ConfigError(f"revocation list {self.path} does not exist (create an empty file)")
            self._load()

    def __len__(self) -> int:
        return len(self._revoked)

    def _load(self) -> None:
        assert self.path is not None
        st = self.path.stat()
        text = self.path.read_text(encoding="utf-8")
        self._revoked = _parse_revocations(text, f"revocation list {self.path.name}")
        self._stamp = (st.st_mtime_ns, st.st_size)
        self.reloads += 1

    def refresh(self, now_s: float | None = None) -> None:
        """Reload the file if it changed (checked at most every ``check_every_s``)."""
        if self.path is None:
            return
        now_s = time.monotonic() if now_s is None else now_s
        if now_s - self._checked_at < self.check_every_s:
            return
        self._checked_at = now_s
        try:
            st = self.path.stat()
            if (st.st_mtime_ns, st.st_size) != self._stamp:
                self._load()
        except (OSError, UnicodeDecodeError, ConfigError) as exc:
            self.errors += 1
            log.error("revocation list not reloaded, the last good list stays in force: %s", exc)

    def revoked(self, issuer: str, ticket_id: str) -> bool:
        """Whether the ticket ``issuer/ticket_id`` is revoked (after a :meth:`refresh`)."""
        self.refresh()
        return f"{issuer}/{ticket_id}" in self._revoked


class TrustStore:
    """The issuers whose tickets the gateway accepts, and the revocation list."""

    def __init__(self, issuers: Mapping[str, ec.EllipticCurvePublicKey] | None = None,
                 revocations: RevocationList | None = None) -> None:
        self._issuers: dict[str, ec.EllipticCurvePublicKey] = {}
        self.revocations = revocations if revocations is not None else RevocationList()
        for issuer_id, key in (issuers or {}).items():
            self.add_issuer(issuer_id, key)

    def add_issuer(self, issuer_id: str, public_key: ec.EllipticCurvePublicKey) -> None:
        """Trust tickets signed by ``public_key`` under ``issuer_id``; :class:`ConfigError` if invalid."""
        check_id(issuer_id, "issuer id")
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, ec.SECP256R1):
            raise ConfigError(f"issuer {issuer_id!r}: not an ECDSA P-256 public key")
        old = self._issuers.get(issuer_id)
        if old is not None and spki_der(old) != spki_der(public_key):
            raise ConfigError(f"issuer id {issuer_id!r} is given two different public keys")
        self._issuers[issuer_id] = public_key

    def issuer(self, issuer_id: str) -> ec.EllipticCurvePublicKey | None:
        """The public key of ``issuer_id``, or None."""
        return self._issuers.get(issuer_id)

    def issuer_ids(self) -> list[str]:
        """All trusted issuer ids, sorted."""
        return sorted(self._issuers)

    def __len__(self) -> int:
        return len(self._issuers)

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
        """``<dir>/issuers/<issuer_id>.pem`` and an optional ``<dir>/revoked.txt``."""
        path = Path(path)
        issuers_dir = path / "issuers"
        if not issuers_dir.is_dir():
            raise ConfigError(f"trust store {path}: no issuers/ directory (expected issuers/<issuer_id>.pem)")
        crl = path / "revoked.txt"
        store = cls(revocations=RevocationList(crl if crl.is_file() else None))
        for pem in sorted(issuers_dir.glob("*.pem")):
            store.add_issuer(pem.stem, load_public_key_pem(pem.read_bytes(), str(pem)))
        return store

    @classmethod
    def from_file(cls, path: str | Path) -> TrustStore:
        """A TOML or JSON file with an ``issuers`` list (see module doc)."""
        path = Path(path)
        parsed = load_model_file(path, _TrustFile, "trust store", formats=(".toml", ".json"))
        crl = None if parsed.revocation_list is None else path.parent / parsed.revocation_list
        store = cls(revocations=RevocationList(crl))
        for entry in parsed.issuers:
            source = f"{path}: issuer {entry.issuer_id!r}"
            if entry.public_key_pem is not None:
                pem: bytes | str = entry.public_key_pem
            else:
                assert entry.public_key_file is not None
                key_path = path.parent / entry.public_key_file
                try:
                    pem = key_path.read_bytes()
                except OSError as exc:
                    raise ConfigError(f"{source}: cannot read {key_path}: {exc}") from None
            store.add_issuer(entry.issuer_id, load_public_key_pem(pem, source))
        return store


# ------------------------------------------------------------------------------ replay store


class ReplayStore:
    """The newest accepted sequence number and timestamp per ticket, persisted across restarts.

    Keyed by a hash of (issuer, ticket id): one ticket per vehicle, so that one sender's
    sequence numbers never lock out another. ``path``: a JSON file (atomic replace); None
    keeps the state in memory only. Entries whose newest request is outside the timestamp
    window are dropped (a replay of them is refused as stale anyway), so the state stays as
    small as the number of tickets active in the last ``window_ms``.

    Writing: by default after every accepted request. With ``deferred=True`` (the gateway)
    :meth:`accept` only marks the state changed, and the owner writes it off the hot path
    (:meth:`snapshot` on its thread, :meth:`write` on another) and with :meth:`close` on a
    clean stop. The restart guarantee holds either way: a deferred file is marked as not
    closed cleanly until :meth:`close`, and a store loaded from such a file refuses every
    request stamped before it was loaded (:meth:`unsafe_before`): one accepted after the
    last write and before a crash cannot be replayed; the senders sign new requests.
    """

    def __init__(self, path: str | Path | None, window_ms: int, *, deferred: bool = False) -> None:
        self.path = Path(path) if path is not None else None
        self.window_ms = window_ms
        self.deferred = deferred and self.path is not None
        #: True when the state changed since it was last handed to :meth:`write`.
        self.dirty = False
        self._state: dict[str, list[int]] = {}  # key -> [last sequence, newest timestamp ms]
        self._unsafe_before_ms = -1
        self._writing = threading.Lock()  # one writer of the file at a time (see write)
        if self.path is not None and self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._state = {str(k): [int(v[0]), int(v[1])] for k, v in data["tickets"].items()}
                clean = bool(data.get("clean", True))
            except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
                raise ConfigError(f"replay state {self.path.name} cannot be read ({exc}); "
                                  "move it away to start afresh") from None
            if not clean:  # written while running: acceptances after that write are unknown
                self._unsafe_before_ms = int(time.time() * 1000)
        self.sweep(int(time.time() * 1000))

    @staticmethod
    def key(issuer: str, ticket_id: str) -> str:
        """The stored key of a ticket (a hash: no pseudonym on disk)."""
        return hashlib.sha256(f"{issuer}/{ticket_id}".encode("ascii")).hexdigest()[:32]

    def __len__(self) -> int:
        return len(self._state)

    def last_sequence(self, key: str) -> int | None:
        """The newest accepted sequence number of a ticket, or None."""
        st = self._state.get(key)
        return None if st is None else st[0]

    def unsafe_before(self, timestamp_ms: int) -> bool:
        """True for a request stamped before this store was loaded from a file that was not
        closed cleanly (it may have been accepted after the last write: see the class doc).
        The millisecond of the load counts as before: a request of that millisecond may have
        been accepted just before the restart."""
        return timestamp_ms <= self._unsafe_before_ms

    def accept(self, key: str, sequence: int, timestamp_ms: int) -> None:
        """Record an accepted request and persist (or, deferred, mark the state changed)."""
        st = self._state.get(key)
        if st is None:
            self._state[key] = [sequence, timestamp_ms]
        else:
            st[0] = sequence
            st[1] = max(st[1], timestamp_ms)
        if self.deferred:
            self.dirty = True
        else:
            self.save()

    def sweep(self, now_ms: int) -> None:
        """Drop tickets whose newest accepted request is outside the window."""
        stale = [k for k, (_, ts) in self._state.items() if ts < now_ms - self.window_ms]
        for k in stale:
            del self._state[k]

    def save(self) -> None:
        """Write the state now (atomic replace; owner-only file)."""
        self.write(self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        """The state to :meth:`write` (a copy: the store may change meanwhile); clears :attr:`dirty`."""
        self.dirty = False
        return {"version": 1, "clean": not self.deferred, "tickets": {k: list(v) for k, v in self._state.items()}}

    def write(self, snapshot: dict[str, Any]) -> None:
        """Write a :meth:`snapshot` (atomic replace; owner-only file). Safe on another thread."""
        if self.path is None:
            return
        with self._writing:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(snapshot, f, separators=(",", ":"))
            os.replace(tmp, self.path)

    def close(self) -> None:
        """A clean stop: write the whole state, marked complete."""
        if self.path is None:
            return
        snap = self.snapshot()
        snap["clean"] = True
        self.write(snap)


# ---------------------------------------------------------------------------------- verifier


class RefusalReason(StrEnum):
    """Why a request was refused. Values are stable: they are used as metric labels."""

    MALFORMED = "malformed"
    UNSIGNED = "unsigned"
    UNKNOWN_ISSUER = "unknown_issuer"
    REVOKED = "revoked"
    TICKET_NOT_VALID_NOW = "ticket_not_valid_now"
    NOT_FOR_THIS_INTERSECTION = "ticket_not_for_intersection"
    STALE_OR_FUTURE = "stale_or_future"
    REPLAYED = "replayed"
    OVER_FAILURE_RATE = "over_failure_rate"
    BAD_TICKET = "bad_ticket_signature"
    BAD_SIGNATURE = "bad_signature"
    NOT_AUTHORISED_FOR_CLASS = "not_authorised_for_class"
    STATION_ID_MISMATCH = "station_id_mismatch"
    OVER_RATE = "over_rate"


ACCEPTED = "accepted"
# Refusals before the signature checks that still spend the sender's failure budget (the
# signature failures spend it where they happen).
_CHEAP_FAILURES = frozenset({
    RefusalReason.MALFORMED, RefusalReason.UNSIGNED, RefusalReason.UNKNOWN_ISSUER, RefusalReason.REVOKED,
    RefusalReason.TICKET_NOT_VALID_NOW, RefusalReason.NOT_FOR_THIS_INTERSECTION,
    RefusalReason.STALE_OR_FUTURE, RefusalReason.REPLAYED,
})


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one check. ``payload`` and ``ticket`` are set only when accepted, so
    that code acting on a request can only ever get at bytes that were verified."""

    reason: RefusalReason | None = None
    payload: bytes | None = None
    ticket: AuthorisationTicket | None = None
    sequence: int = 0
    timestamp_ms: int = 0
    replay_key: str = ""  # ReplayStore.key of the ticket (hashed once per request)

    @property
    def accepted(self) -> bool:
        return self.reason is None

    def __bool__(self) -> bool:
        return self.accepted


class TokenBuckets:
    """Token buckets by key (``rate_per_s`` refill, ``burst`` size), at most ``capacity`` of
    them (the least recently used go first: an evicted bucket comes back full)."""

    def __init__(self, rate_per_s: float, burst: float, capacity: int) -> None:
        self.rate_per_s, self.burst, self.capacity = rate_per_s, burst, capacity
        self._b: OrderedDict[Any, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._b)

    def tokens(self, key: Any, now_ms: int) -> float:
        """Tokens available to ``key`` at ``now_ms``."""
        b = self._b.get(key)
        if b is None:
            return self.burst
        return min(self.burst, b[0] + max(0, now_ms - b[1]) / 1000.0 * self.rate_per_s)

    def try_take(self, key: Any, now_ms: int) -> bool:
        """Spend one token of ``key`` if it has one (one look-up); False, and nothing spent, if not."""
        b = self._b.get(key)
        tokens = self.burst if b is None else min(self.burst, b[0] + max(0, now_ms - b[1]) / 1000.0 * self.rate_per_s)
        if tokens < 1.0:
            return False
        if b is None:
            self._b[key] = [tokens - 1.0, now_ms]
            while len(self._b) > self.capacity:
                self._b.popitem(last=False)
        else:
            b[0], b[1] = tokens - 1.0, now_ms
            self._b.move_to_end(key)
        return True

    def take(self, key: Any, now_ms: int) -> None:
        """Spend one token of ``key`` (may go below zero: the caller checks :meth:`tokens`)."""
        self._b[key] = [self.tokens(key, now_ms) - 1.0, now_ms]
        self._b.move_to_end(key)
        while len(self._b) > self.capacity:
            self._b.popitem(last=False)

    def sweep(self, now_ms: int) -> None:
        """Drop buckets that have refilled (dropping them changes no decision)."""
        full = [k for k, b in self._b.items() if b[0] + (now_ms - b[1]) / 1000.0 * self.rate_per_s >= self.burst]
        for k in full:
            del self._b[k]


class RequestVerifier:
    """Checks signed priority requests against a :class:`TrustStore` (see the module docstring).

    ``window_s``: how far the envelope's timestamp may lie from now either way.
    ``max_rate_per_s`` / ``burst``: the request token bucket of each ticket.
    ``failure_rate_per_s`` / ``failure_burst``: failed signature checks allowed per MQTT
    client and per (client, ticket) before further requests from there are refused unchecked.
    ``state_file``: where the replay state is persisted (None: memory only);
    ``defer_writes``: the owner writes it (see :class:`ReplayStore`), not every acceptance.
    """

    def __init__(
        self,
        trust_store: TrustStore,
        *,
        window_s: float = 5.0,
        max_rate_per_s: float = 2.0,
        burst: int = 5,
        failure_rate_per_s: float = 1.0,
        failure_burst: int = 5,
        state_file: str | Path | None = None,
        max_tracked: int = 10_000,
        defer_writes: bool = False,
    ) -> None:
        for name, value in (("window_s", window_s), ("max_rate_per_s", max_rate_per_s),
                            ("failure_rate_per_s", failure_rate_per_s)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, not {value!r}")
        if burst < 1 or failure_burst < 1:
            raise ValueError("burst and failure_burst must be at least 1")
        self.trust_store = trust_store
        self.window_ms = round(window_s * 1000)
        self.counts: Counter[str] = Counter()
        """Number of verdicts by outcome: ``"accepted"`` and each :class:`RefusalReason` value."""
        self.replay = ReplayStore(state_file, self.window_ms, deferred=defer_writes)
        self._rate = TokenBuckets(float(max_rate_per_s), float(burst), max_tracked)
        self._fail_client = TokenBuckets(float(failure_rate_per_s), float(failure_burst), max_tracked)
        self._fail_ticket = TokenBuckets(float(failure_rate_per_s), float(failure_burst), max_tracked)
        self._tickets = TicketKeyCache()
        self._last_sweep_ms: int | None = None

    # -- public ----------------------------------------------------------------------------

    def authenticate(self, envelope: object, *, region: str, intersection_id: str, now_ms: int,
                     client: str = "") -> Verdict:
        """Step 1: is this a genuine, fresh request under a valid ticket for this intersection?

        ``envelope``: a :class:`SignedRequest`, its JSON (bytes / str), a mapping in JSON form,
        or anything else (refused). ``client``: the MQTT login it came from ("" if unknown).
        Never raises. The accepted verdict carries the verified payload and ticket; nothing
        is stored until :meth:`authorise`.
        """
        try:
            verdict = self._authenticate(envelope, region, intersection_id, int(now_ms), client)
        except Exception:  # noqa: BLE001  (last line of defence: bad input must never crash)
            verdict = Verdict(RefusalReason.MALFORMED)
        if not verdict:
            self.counts[verdict.reason.value] += 1  # type: ignore[union-attr]
            if verdict.reason in _CHEAP_FAILURES:
                # A genuine device is hardly ever refused: one that keeps sending refused
                # requests spends its budget and is then refused without even a parse.
                self._fail_client.take(client, int(now_ms))
        return verdict

    def authorise(self, auth: Verdict, required_class: str, now_ms: int,
                  station_ids: Iterable[int] = ()) -> Verdict:
        """Step 2: may this ticket ask for ``required_class``, under these station ids, now?

        ``auth``: an accepted verdict of :meth:`authenticate`; ``station_ids``: the ids the
        request names (SREM header, requestor), each of which must be the ticket's. On
        acceptance the replay and rate state is updated (and persisted).
        """
        verdict = self._authorise(auth, required_class, int(now_ms), tuple(station_ids))
        self.counts[ACCEPTED if verdict.reason is None else verdict.reason.value] += 1
        return verdict

    def verify(self, envelope: object, required_class: str, now_ms: int, *, region: str,
               intersection_id: str, client: str = "", station_ids: Iterable[int] = ()) -> Verdict:
        """Both steps at once (for callers that know the class without decoding)."""
        auth = self.authenticate(envelope, region=region, intersection_id=intersection_id,
                                 now_ms=now_ms, client=client)
        return self.authorise(auth, required_class, now_ms, station_ids) if auth else auth

    def client_throttled(self, client: str, now_ms: int) -> bool:
        """Whether ``client`` has spent its failed-verification budget (a dict look-up: the
        gateway asks this before it even parses a request from that client)."""
        if self._fail_client.tokens(client, now_ms) >= 1.0:
            return False
        self.counts[RefusalReason.OVER_FAILURE_RATE.value] += 1
        return True

    @property
    def tracked(self) -> dict[str, int]:
        """Sizes of the per-ticket and per-client state (for tests and metrics; no ids)."""
        return {"replay": len(self.replay), "rate": len(self._rate), "fail_client": len(self._fail_client),
                "fail_ticket": len(self._fail_ticket), "tickets": len(self._tickets)}

    # -- internals -------------------------------------------------------------------------

    def _authenticate(self, envelope: object, region: str, inter: str, now_ms: int, client: str) -> Verdict:
        self._maybe_sweep(now_ms)
        parsed = _parse(envelope)
        if isinstance(parsed, RefusalReason):
            return Verdict(parsed)
        req, t = parsed, parsed.ticket
        if not req.signature:
            return Verdict(RefusalReason.UNSIGNED)
        issuer_key = self.trust_store.issuer(t.issuer)
        if issuer_key is None:
            return Verdict(RefusalReason.UNKNOWN_ISSUER)
        if self.trust_store.revocations.revoked(t.issuer, t.ticket_id):
            return Verdict(RefusalReason.REVOKED)
        if not t.valid_at(now_ms / 1000.0):
            return Verdict(RefusalReason.TICKET_NOT_VALID_NOW)
        if not t.covers(region, inter):
            return Verdict(RefusalReason.NOT_FOR_THIS_INTERSECTION)
        if abs(req.timestamp_ms - now_ms) > self.window_ms:
            return Verdict(RefusalReason.STALE_OR_FUTURE)
        rkey = ReplayStore.key(t.issuer, t.ticket_id)
        last = self.replay.last_sequence(rkey)
        if (last is not None and req.sequence <= last) or self.replay.unsafe_before(req.timestamp_ms):
            return Verdict(RefusalReason.REPLAYED)
        pair = (client, t.issuer, t.ticket_id)
        if self._fail_client.tokens(client, now_ms) < 1.0 or self._fail_ticket.tokens(pair, now_ms) < 1.0:
            return Verdict(RefusalReason.OVER_FAILURE_RATE)
        digest = t.digest()
        key = self._tickets.get(digest)
        if key is None:
            key = holder_key(t, issuer_key)
            if key is None:
                self._failed(client, pair, now_ms)
                return Verdict(RefusalReason.BAD_TICKET)
            self._tickets.put(digest, key)
        data = canonical_bytes(t.issuer, t.ticket_id, req.timestamp_ms, req.sequence, req.payload)
        if not verify_raw_signature(key, req.signature, data):
            self._failed(client, pair, now_ms)
            return Verdict(RefusalReason.BAD_SIGNATURE)
        return Verdict(None, req.payload, t, req.sequence, req.timestamp_ms, rkey)

    def _failed(self, client: str, pair: tuple[str, str, str], now_ms: int) -> None:
        self._fail_client.take(client, now_ms)
        self._fail_ticket.take(pair, now_ms)

    def _authorise(self, auth: Verdict, required_class: str, now_ms: int, station_ids: tuple[int, ...]) -> Verdict:
        t = auth.ticket
        if not auth or t is None or auth.payload is None:
            return Verdict(auth.reason or RefusalReason.MALFORMED)
        if required_class not in t.classes:
            return Verdict(RefusalReason.NOT_AUTHORISED_FOR_CLASS)
        if any(s != t.station_id for s in station_ids):
            return Verdict(RefusalReason.STATION_ID_MISMATCH)
        rkey = auth.replay_key or ReplayStore.key(t.issuer, t.ticket_id)
        last = self.replay.last_sequence(rkey)
        if last is not None and auth.sequence <= last:
            return Verdict(RefusalReason.REPLAYED)
        if not self._rate.try_take(rkey, now_ms):
            return Verdict(RefusalReason.OVER_RATE)
        self.replay.accept(rkey, auth.sequence, auth.timestamp_ms)
        return auth

    def _maybe_sweep(self, now_ms: int) -> None:
        # At most once per window, so that verification stays O(1) amortised.
        if self._last_sweep_ms is not None and 0 <= now_ms - self._last_sweep_ms < self.window_ms:
            return
        self._last_sweep_ms = now_ms
        self.replay.sweep(now_ms)
        for b in (self._rate, self._fail_client, self._fail_ticket):
            b.sweep(now_ms)


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
            return SignedRequest.model_validate_json(envelope)
        except ValidationError:
            pass
        # Only for a refusal: tell an unsigned object from garbage (the cheap path is above).
        try:
            data: Any = json.loads(envelope)
        except (ValueError, UnicodeDecodeError):
            return RefusalReason.MALFORMED
        if isinstance(data, dict) and "signature" not in data:
            return RefusalReason.UNSIGNED
        return RefusalReason.MALFORMED
    return RefusalReason.MALFORMED
