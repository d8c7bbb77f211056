"""Authorisation tickets: who may ask which intersections for which priority, and until when.

Modelled on the authorisation tickets of ETSI TS 103 097 and the EU C-ITS Credential
Management System (CCMS), reduced to what a road authority running its own intersections
needs, in a small JSON format that any language can produce:

* an **issuer** (the road authority's local root) holds an ECDSA P-256 key; its public key
  is in the gateway's trust store (:class:`ivri.gateway.security.TrustStore`);
* the issuer signs an **authorisation ticket** for each vehicle or app installation: the
  holder's public key, a pseudonymous ticket id, the pseudonymous ITS station id the holder
  uses in its messages, a validity period, a scope (the intersections where it is valid) and
  the priority classes it may request (the role of the SSP of a TS 103 097 certificate);
* the holder signs every request with its own key and sends the ticket with it (as a 1609.2
  ``SignedData`` carries its signer's certificate): the gateway needs only the issuer's key.

Wire format (a JSON object; every field required, no others)::

    version      1
    issuer       issuer id, [A-Za-z0-9._:-]{1,64}
    ticket_id    pseudonym, [A-Za-z0-9._:-]{1,64}; unique per issuer; what a revocation
                 list names; replay state is kept per ticket
    station_id   0..4294967295: the StationID the holder must use in the SREM header and as
                 the requestor id (a pseudonym too: it changes with the ticket)
    public_key   base64 of the holder's DER SubjectPublicKeyInfo (ECDSA P-256)
    not_before   Unix seconds (integer)
    not_after    Unix seconds (integer), later than not_before
    scope        1..64 entries "<region>/<intersection id>" or "<region>/*" (topic levels)
    classes      1..5 priority classes: emergency, public_transport, freight, cyclist_app,
                 pedestrian_app
    signature    base64 of the issuer's ECDSA P-256 / SHA-256 signature, raw r || s (64 bytes),
                 over  b"ivri-authorisation-ticket-v1|" + the canonical JSON of all other fields
                 (keys sorted, separators "," and ":", ASCII only, lists in the given order)

Tickets for tests and for a pilot are issued with ``deploy/pki/issue_ticket.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import OrderedDict
from typing import Any, Literal, get_args

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ivri.errors import ConfigError

__all__ = [
    "ID_PATTERN",
    "PRIORITY_CLASSES",
    "AuthorisationTicket",
    "PriorityClass",
    "TicketKeyCache",
    "check_id",
    "holder_key",
    "issue_ticket",
    "raw_signature",
    "spki_der",
    "verify_raw_signature",
]

PriorityClass = Literal["emergency", "public_transport", "freight", "cyclist_app", "pedestrian_app"]
PRIORITY_CLASSES: frozenset[str] = frozenset(get_args(PriorityClass))

# Ids are part of signed byte strings and file names: no "|" keeps those unambiguous, no "/"
# keeps them out of paths and topic levels.
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
_ID_RE = re.compile(ID_PATTERN)
_SCOPE_PATTERN = r"^[^/+#\x00|]{1,64}/[^/+#\x00|]{1,64}$"
_TICKET_DOMAIN = b"ivri-authorisation-ticket-v1|"
_SIGNATURE_BYTES = 64
_HASH = ec.ECDSA(hashes.SHA256())
_CURVE = ec.SECP256R1()


def check_id(value: str, what: str) -> str:
    """``value`` if it is a valid issuer / ticket id, else :class:`ConfigError` naming ``what``."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ConfigError(f"{what} {value!r} must match {ID_PATTERN}")
    return value


def raw_signature(private_key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA P-256 / SHA-256 signature of ``data`` as raw ``r || s`` (64 bytes, as IEEE 1609.2)."""
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(private_key.curve, ec.SECP256R1):
        raise TypeError("signatures are made with ECDSA P-256 keys only")
    r, s = decode_dss_signature(private_key.sign(data, _HASH))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify_raw_signature(public_key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` (raw ``r || s``) is ``public_key``'s over ``data``. Never raises."""
    if len(signature) != _SIGNATURE_BYTES:
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if r == 0 or s == 0:
        return False
    try:
        public_key.verify(encode_dss_signature(r, s), data, _HASH)
    except (InvalidSignature, ValueError):
        return False
    return True


def spki_der(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The DER SubjectPublicKeyInfo of a public key."""
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class AuthorisationTicket(BaseModel):
    """One authorisation ticket (see the module docstring for the wire format).

    Strict types: a number sent as a string is malformed, not converted. In JSON the two
    byte fields are base64.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, ser_json_bytes="base64", val_json_bytes="base64"
    )

    version: Literal[1] = 1
    issuer: str = Field(pattern=ID_PATTERN)
    ticket_id: str = Field(pattern=ID_PATTERN)
    station_id: int = Field(ge=0, le=4294967295)
    public_key: bytes = Field(min_length=1, max_length=200)
    not_before: int = Field(ge=0, le=2**40)
    not_after: int = Field(ge=0, le=2**40)
    scope: tuple[str, ...] = Field(min_length=1, max_length=64)
    classes: tuple[PriorityClass, ...] = Field(min_length=1, max_length=5)
    signature: bytes = Field(max_length=128)

    @model_validator(mode="after")
    def _consistent(self) -> AuthorisationTicket:
        if self.not_after <= self.not_before:
            raise ValueError("not_after must be later than not_before")
        for s in self.scope:
            if not re.match(_SCOPE_PATTERN, s):
                raise ValueError(f"scope entry {s[:70]!r} is not <region>/<intersection id> or <region>/*")
        return self

    def signed_bytes(self) -> bytes:
        """The exact bytes the issuer signs (domain prefix + canonical JSON without the signature)."""
        fields = {
            "version": self.version, "issuer": self.issuer, "ticket_id": self.ticket_id,
            "station_id": self.station_id, "public_key": base64.b64encode(self.public_key).decode("ascii"),
            "not_before": self.not_before, "not_after": self.not_after, "scope": list(self.scope),
            "classes": list(self.classes),
        }
        return _TICKET_DOMAIN + json.dumps(fields, sort_keys=True, separators=(",", ":"),
                                           ensure_ascii=True).encode("ascii")

    def digest(self) -> bytes:
        """SHA-256 over the signed bytes and the signature: the ticket's identity in caches."""
        return hashlib.sha256(self.signed_bytes() + b"|" + self.signature).digest()

    def valid_at(self, unix_s: float) -> bool:
        """Whether ``unix_s`` lies in the validity period."""
        return self.not_before <= unix_s <= self.not_after

    def covers(self, region: str, intersection_id: str) -> bool:
        """Whether the ticket is valid at ``<region>/<intersection_id>``."""
        return f"{region}/{intersection_id}" in self.scope or f"{region}/*" in self.scope


def issue_ticket(
    issuer_id: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    holder_key: ec.EllipticCurvePublicKey,
    *,
    ticket_id: str,
    station_id: int,
    not_before: int,
    not_after: int,
    scope: list[str] | tuple[str, ...],
    classes: list[str] | tuple[str, ...],
) -> AuthorisationTicket:
    """Sign a ticket for ``holder_key`` with the issuer's key; :class:`ConfigError` if a field is invalid."""
    check_id(issuer_id, "issuer id")
    check_id(ticket_id, "ticket id")
    unknown = sorted(set(classes) - PRIORITY_CLASSES)
    if unknown:
        raise ConfigError(f"unknown priority class(es) {unknown} (known: {', '.join(sorted(PRIORITY_CLASSES))})")
    fields: dict[str, Any] = {
        "issuer": issuer_id, "ticket_id": ticket_id, "station_id": int(station_id),
        "public_key": spki_der(holder_key), "not_before": int(not_before), "not_after": int(not_after),
        "scope": tuple(scope), "classes": tuple(classes), "signature": b"",
    }
    try:
        unsigned = AuthorisationTicket(**fields)
    except ValueError as exc:
        raise ConfigError(f"ticket {ticket_id!r}: {exc}") from None
    return unsigned.model_copy(update={"signature": raw_signature(issuer_key, unsigned.signed_bytes())})


class TicketKeyCache:
    """Tickets whose issuer signature has been checked, with their holder's parsed public key.

    A genuine sender sends the same ticket with every request: its issuer signature is checked
    once, not on every request. Bounded (least recently used entries go first), so that a
    flood of distinct tickets cannot grow it.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[bytes, ec.EllipticCurvePublicKey] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, digest: bytes) -> ec.EllipticCurvePublicKey | None:
        """The holder key of a ticket checked before, or None."""
        key = self._keys.get(digest)
        if key is not None:
            self._keys.move_to_end(digest)
        return key

    def put(self, digest: bytes, key: ec.EllipticCurvePublicKey) -> None:
        """Remember a checked ticket."""
        self._keys[digest] = key
        self._keys.move_to_end(digest)
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)

    def clear(self) -> None:
        """Forget all (e.g. when the trust store changes)."""
        self._keys.clear()


def holder_key(ticket: AuthorisationTicket, issuer_public_key: ec.EllipticCurvePublicKey) -> ec.EllipticCurvePublicKey | None:
    """The holder's public key if the issuer's signature on ``ticket`` is good, else None."""
    if not verify_raw_signature(issuer_public_key, ticket.signature, ticket.signed_bytes()):
        return None
    try:
        key = serialization.load_der_public_key(ticket.public_key)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return None
    return key
