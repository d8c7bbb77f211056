"""Test helpers: an issuer, authorisation tickets and signed requests (ivri.gateway.tickets).

Importable from tests as ``from pki import ...`` (tests/ is on ``sys.path`` under pytest's
default import mode, as for ``broker``).
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec

from ivri.gateway.security import (
    RevocationList,
    SignedRequest,
    TrustStore,
    generate_key_pair,
    sign_request,
)
from ivri.gateway.tickets import AuthorisationTicket, issue_ticket

__all__ = ["ISSUER", "ISSUER_PRIV", "ISSUER_PUB", "Holder", "holder", "trust_store"]

ISSUER = "test-root"
ISSUER_PRIV, ISSUER_PUB = generate_key_pair()
_station_ids = itertools.count(1000)


def trust_store(revocation_file: str | None = None) -> TrustStore:
    """A trust store with the test issuer (and a revocation list file if given)."""
    return TrustStore({ISSUER: ISSUER_PUB}, RevocationList(revocation_file, check_every_s=0.0)
                      if revocation_file else None)


@dataclass
class Holder:
    """A vehicle or app with its key and ticket; :meth:`sign` numbers its requests."""

    key: ec.EllipticCurvePrivateKey
    ticket: AuthorisationTicket
    seq: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def station_id(self) -> int:
        return self.ticket.station_id

    def envelope(self, payload: bytes, seq: int | None = None, ts_ms: int | None = None) -> SignedRequest:
        return sign_request(payload, self.key, self.ticket,
                            int(time.time() * 1000) if ts_ms is None else ts_ms,
                            next(self.seq) if seq is None else seq)

    def sign(self, payload: bytes, seq: int | None = None, ts_ms: int | None = None) -> bytes:
        """The JSON envelope of ``payload``, as published on an srem topic."""
        return self.envelope(payload, seq, ts_ms).model_dump_json().encode()


def holder(classes: Sequence[str], *, scope: Sequence[str] = ("nl/J101",), station_id: int | None = None,
           valid_s: tuple[float, float] = (-60.0, 3600.0), issuer: str = ISSUER,
           issuer_key: ec.EllipticCurvePrivateKey = ISSUER_PRIV, ticket_id: str | None = None,
           at: float | None = None) -> Holder:
    """A fresh key pair with a ticket for ``classes`` at ``scope``, valid from ``at`` (Unix
    seconds, default now) + valid_s[0] to ``at`` + valid_s[1]."""
    priv, pub = generate_key_pair()
    now = time.time() if at is None else at
    ticket = issue_ticket(
        issuer, issuer_key, pub, ticket_id=ticket_id or secrets.token_hex(8),
        station_id=next(_station_ids) if station_id is None else station_id,
        not_before=int(now + valid_s[0]), not_after=int(now + valid_s[1]), scope=scope, classes=classes,
    )
    return Holder(priv, ticket)
