"""Issue authorisation tickets for the ivri gateway (tests, demos, a pilot).

The format and the checks are described in ``docs/gateway.md`` ("Authorisation tickets") and
``ivri/gateway/tickets.py``. Run from the repository root with the project's Python::

    # 1. an issuer (the road authority's local root) and a trust store for the gateway
    python deploy/pki/issue_ticket.py init-issuer --issuer-id nl-ut-root --out pki/
    #    -> pki/issuer-key.pem (keep it offline), pki/trust/issuers/nl-ut-root.pem,
    #       pki/trust/revoked.txt          (ivri gateway --trust pki/trust)

    # 2. a ticket for an ambulance, valid one day at J101 and J102 of region nl
    python deploy/pki/issue_ticket.py issue --issuer-key pki/issuer-key.pem --issuer-id nl-ut-root \
        --classes emergency --scope nl/J101 --scope nl/J102 --days 1 --out pki/tickets/
    #    -> pki/tickets/<ticket id>.ticket.json and <ticket id>.key.pem (the holder's key)

    # 3. a signed request from a JSON SREM (station ids and ETA set from the ticket and --eta)
    python deploy/pki/issue_ticket.py sign --ticket pki/tickets/<id>.ticket.json \
        --key pki/tickets/<id>.key.pem --srem docs/its-samples/srem_bus.json --eta 20 > request.json

    # 4. revoke a ticket (the gateway reloads the list within a second, no restart)
    python deploy/pki/issue_ticket.py revoke --trust pki/trust --issuer-id nl-ut-root --ticket-id <id>
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ivri.errors import IvriError
from ivri.gateway.ingest import minute_of_year
from ivri.gateway.security import (
    generate_key_pair,
    load_private_key_pem,
    sign_request,
    write_private_key_pem,
    write_public_key_pem,
)
from ivri.gateway.tickets import PRIORITY_CLASSES, AuthorisationTicket, check_id, issue_ticket
from ivri.its import decode_json, encode_json


def init_issuer(args: argparse.Namespace) -> None:
    """A new issuer key pair and a trust store directory that trusts it."""
    check_id(args.issuer_id, "issuer id")
    out = Path(args.out)
    key_path = out / "issuer-key.pem"
    if key_path.exists():
        raise IvriError(f"{key_path} exists; refusing to overwrite an issuer key")
    priv, pub = generate_key_pair()
    write_private_key_pem(key_path, priv)
    write_public_key_pem(out / "trust" / "issuers" / f"{args.issuer_id}.pem", pub)
    crl = out / "trust" / "revoked.txt"
    if not crl.exists():
        crl.write_text("# revoked tickets: one <issuer_id>/<ticket_id> per line\n", encoding="utf-8")
    print(f"issuer {args.issuer_id}: key {key_path}, trust store {out / 'trust'}")


def issue(args: argparse.Namespace) -> None:
    """A ticket and the holder's key pair."""
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    unknown = sorted(set(classes) - PRIORITY_CLASSES)
    if unknown:
        raise IvriError(f"unknown class(es) {unknown}; known: {', '.join(sorted(PRIORITY_CLASSES))}")
    issuer_key = load_private_key_pem(args.issuer_key)
    holder_priv, holder_pub = generate_key_pair()
    ticket_id = args.ticket_id or secrets.token_hex(8)
    now = int(time.time())
    ticket = issue_ticket(
        args.issuer_id, issuer_key, holder_pub, ticket_id=ticket_id,
        station_id=args.station_id if args.station_id is not None else secrets.randbelow(2**32),
        not_before=now - 60, not_after=now + round(args.days * 86400), scope=args.scope, classes=classes,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{ticket_id}.ticket.json").write_text(ticket.model_dump_json(indent=2) + "\n", encoding="utf-8")
    write_private_key_pem(out / f"{ticket_id}.key.pem", holder_priv)
    print(f"ticket {ticket_id}: station id {ticket.station_id}, classes {','.join(classes)}, "
          f"scope {' '.join(args.scope)}, valid {args.days:g} day(s); files in {out}")


def sign(args: argparse.Namespace) -> None:
    """Print the signed envelope of an SREM (JSON codec) for the ticket's holder."""
    ticket = AuthorisationTicket.model_validate_json(Path(args.ticket).read_bytes())
    key = load_private_key_pem(args.key)
    srem = decode_json(Path(args.srem).read_bytes(), "srem")
    # The request must name the ticket's (pseudonymous) station id, in the header and as requestor.
    updates: dict[str, object] = {
        "header": srem.header.model_copy(update={"station_id": ticket.station_id}),
        "requestor": srem.requestor.model_copy(update={"id": ticket.station_id}),
    }
    if args.eta is not None:
        moy, ms = minute_of_year(time.time() + args.eta)
        updates["requests"] = tuple(p.model_copy(update={"minute": moy, "second": ms}) for p in srem.requests)
    payload = encode_json(srem.model_copy(update=updates))
    seq = args.seq if args.seq is not None else int(time.time() * 1000)  # grows between runs
    env = sign_request(payload, key, ticket, int(time.time() * 1000), seq)
    print(env.model_dump_json())


def revoke(args: argparse.Namespace) -> None:
    """Append a ticket to the trust store's revocation list."""
    check_id(args.issuer_id, "issuer id")
    check_id(args.ticket_id, "ticket id")
    crl = Path(args.trust) / "revoked.txt"
    with crl.open("a", encoding="utf-8") as f:
        f.write(f"{args.issuer_id}/{args.ticket_id}\n")
    print(f"revoked {args.issuer_id}/{args.ticket_id} in {crl}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Issue authorisation tickets for the ivri gateway.")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("init-issuer", help="create an issuer key and a trust store")
    p.add_argument("--issuer-id", required=True)
    p.add_argument("--out", required=True, help="directory for issuer-key.pem and trust/")
    p.set_defaults(func=init_issuer)
    p = sub.add_parser("issue", help="issue a ticket and the holder's key")
    p.add_argument("--issuer-key", required=True)
    p.add_argument("--issuer-id", required=True)
    p.add_argument("--classes", required=True, help=f"comma-separated: {', '.join(sorted(PRIORITY_CLASSES))}")
    p.add_argument("--scope", action="append", required=True, help="<region>/<intersection id> or <region>/*")
    p.add_argument("--days", type=float, default=1.0, help="validity from now")
    p.add_argument("--station-id", type=int, help="pseudonymous station id (default: random)")
    p.add_argument("--ticket-id", help="pseudonymous ticket id (default: random)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=issue)
    p = sub.add_parser("sign", help="print a signed request (SignedRequest JSON)")
    p.add_argument("--ticket", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--srem", required=True, help="SREM in the JSON codec (e.g. docs/its-samples/srem_bus.json)")
    p.add_argument("--eta", type=float, help="set the arrival to now + ETA seconds")
    p.add_argument("--seq", type=int, help="sequence number (default: milliseconds since the epoch)")
    p.set_defaults(func=sign)
    p = sub.add_parser("revoke", help="add a ticket to the revocation list")
    p.add_argument("--trust", required=True, help="the trust store directory")
    p.add_argument("--issuer-id", required=True)
    p.add_argument("--ticket-id", required=True)
    p.set_defaults(func=revoke)
    args = ap.parse_args(argv)
    try:
        args.func(args)
    except (IvriError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
