"""Authorisation of priority requests: tickets, signatures, freshness, replay, rate, hostile input."""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pki import ISSUER, ISSUER_PUB
from pki import holder as pki_holder

from ivri.errors import ConfigError
from ivri.gateway.security import (
    RefusalReason,
    RequestVerifier,
    RevocationList,
    SignedRequest,
    TrustStore,
    generate_key_pair,
    load_private_key_pem,
    sign_request,
    write_private_key_pem,
    write_public_key_pem,
)
from ivri.gateway.tickets import AuthorisationTicket, issue_ticket

NOW = int(time.time() * 1000)
# Tickets valid around NOW (tests verify at NOW, which may be minutes before they run).
holder = functools.partial(pki_holder, at=NOW / 1000)
BUS = holder(["public_transport"])
AMB = holder(["emergency", "public_transport"])
OTHER_PRIV, OTHER_PUB = generate_key_pair()
AT = {"region": "nl", "intersection_id": "J101"}


def make_store() -> TrustStore:
    return TrustStore({ISSUER: ISSUER_PUB})


def make_verifier(**kw: float) -> RequestVerifier:
    return RequestVerifier(make_store(), **kw)  # type: ignore[arg-type]


def bus_request(payload: bytes = b"srem", ts: int = NOW, seq: int = 1) -> SignedRequest:
    return BUS.envelope(payload, seq, ts)


def verify(v: RequestVerifier, envelope: object, cls: str = "public_transport", now: int = NOW, **kw: object):
    return v.verify(envelope, cls, now, **{**AT, **kw})  # type: ignore[arg-type]


def flip_bit(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


# ------------------------------------------------------------------------- basic behaviour


@settings(max_examples=40, deadline=None)
@given(payload=st.binary(max_size=300), seq=st.integers(0, 2**40), skew=st.integers(-5000, 5000))
def test_signed_request_accepted_once_then_replayed(payload: bytes, seq: int, skew: int) -> None:
    v = make_verifier()
    req = BUS.envelope(payload, seq, NOW + skew)
    first = verify(v, req, "public_transport", NOW)
    assert first.accepted and first.payload == payload
    again = verify(v, req, "public_transport", NOW)
    assert again.reason is RefusalReason.REPLAYED and again.payload is None
    assert v.counts["accepted"] == 1 and v.counts[RefusalReason.REPLAYED] == 1


def test_json_round_trip_is_accepted() -> None:
    v = make_verifier()
    wire = bus_request(b"\x00\xff binary").model_dump_json()
    assert '"payload":"' in wire  # base64 text, not a list of numbers
    assert verify(v, wire.encode(), "public_transport", NOW).accepted
    assert verify(v, json.loads(wire), "public_transport", NOW).reason is RefusalReason.REPLAYED


def test_older_sequence_is_replayed_newer_is_accepted() -> None:
    v = make_verifier()
    assert verify(v, bus_request(seq=10), "public_transport", NOW).accepted
    assert verify(v, bus_request(seq=9), "public_transport", NOW).reason is RefusalReason.REPLAYED
    assert verify(v, bus_request(seq=11), "public_transport", NOW).accepted


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_single_bit_flip_is_refused(data: st.DataObject) -> None:
    req = bus_request(b"priority please, line 12")
    field = data.draw(st.sampled_from(["payload", "signature"]))
    original: bytes = getattr(req, field)
    bit = data.draw(st.integers(0, len(original) * 8 - 1))
    forged = req.model_copy(update={field: flip_bit(original, bit)})
    verdict = verify(make_verifier(), forged, "public_transport", NOW)
    assert verdict.reason is RefusalReason.BAD_SIGNATURE


@settings(max_examples=30, deadline=None)
@given(delta=st.integers(1, 10**9), sign=st.sampled_from([-1, 1]))
def test_timestamp_outside_window_is_refused(delta: int, sign: int) -> None:
    v = make_verifier(window_s=5.0)
    req = bus_request(ts=NOW + sign * (5000 + delta))
    assert verify(v, req, "public_transport", NOW).reason is RefusalReason.STALE_OR_FUTURE
    assert verify(v, bus_request(ts=NOW + sign * 5000), "public_transport", NOW).accepted


def test_unknown_issuer_wrong_key_and_class() -> None:
    v = make_verifier()
    stranger = holder(["public_transport"], issuer="other-root", issuer_key=OTHER_PRIV)
    assert verify(v, stranger.envelope(b"x", None, NOW)).reason is RefusalReason.UNKNOWN_ISSUER
    # A ticket signed by another key under our issuer's name: the ticket signature fails.
    fake = holder(["emergency"], issuer=ISSUER, issuer_key=OTHER_PRIV)
    assert verify(v, fake.envelope(b"x", None, NOW), "emergency").reason is RefusalReason.BAD_TICKET
    # The bus's genuine ticket with a request signed by another key.
    impostor = sign_request(b"x", OTHER_PRIV, BUS.ticket, NOW, 1)
    assert verify(v, impostor).reason is RefusalReason.BAD_SIGNATURE
    assert verify(v, bus_request(), "emergency").reason is RefusalReason.NOT_AUTHORISED_FOR_CLASS
    assert verify(v, AMB.envelope(b"x", 1, NOW), "emergency").accepted
    # refusals never move state: the bus's sequence 1 is still fresh
    assert verify(v, bus_request()).accepted


def test_ticket_validity_scope_and_station_id() -> None:
    v = make_verifier()
    expired = holder(["emergency"], valid_s=(-7200.0, -60.0))
    assert verify(v, expired.envelope(b"x", None, NOW), "emergency").reason is RefusalReason.TICKET_NOT_VALID_NOW
    early = holder(["emergency"], valid_s=(600.0, 3600.0))
    assert verify(v, early.envelope(b"x", None, NOW), "emergency").reason is RefusalReason.TICKET_NOT_VALID_NOW
    elsewhere = holder(["emergency"], scope=["nl/J999"])
    assert verify(v, elsewhere.envelope(b"x", None, NOW), "emergency").reason is RefusalReason.NOT_FOR_THIS_INTERSECTION
    region = holder(["emergency"], scope=["nl/*"])
    assert verify(v, region.envelope(b"x", 1, NOW), "emergency").accepted
    assert verify(v, region.envelope(b"x", 2, NOW), "emergency", region="de").reason is (
        RefusalReason.NOT_FOR_THIS_INTERSECTION)
    amb = holder(["emergency"])
    mismatch = verify(v, amb.envelope(b"x", 1, NOW), "emergency", station_ids=(amb.station_id, 4242))
    assert mismatch.reason is RefusalReason.STATION_ID_MISMATCH
    assert verify(v, amb.envelope(b"x", 2, NOW), "emergency", station_ids=(amb.station_id,) * 2).accepted


def test_ticket_format_is_checked() -> None:
    t = json.loads(AMB.ticket.model_dump_json())
    for field, value in [("not_after", t["not_before"]), ("scope", ["J101"]), ("classes", ["vip"]),
                         ("station_id", -1), ("version", 2), ("scope", [])]:
        with pytest.raises(ValueError):
            AuthorisationTicket.model_validate_json(json.dumps(dict(t, **{field: value})))
    with pytest.raises(ConfigError, match="ticket id"):
        issue_ticket(ISSUER, OTHER_PRIV, OTHER_PUB, ticket_id="a/b", station_id=1, not_before=0,
                     not_after=10, scope=["nl/*"], classes=["emergency"])
    # Changing any signed field of a genuine ticket breaks the issuer's signature.
    for field, value in [("classes", ["emergency", "freight"]), ("scope", ["nl/*"]),
                         ("not_after", t["not_after"] + 1), ("station_id", 1)]:
        forged = AMB.ticket.model_copy(update={field: tuple(value) if isinstance(value, list) else value})
        env = sign_request(b"x", AMB.key, forged, NOW, 99)
        assert verify(make_verifier(), env, "emergency").reason is RefusalReason.BAD_TICKET, field


def test_revocation_list_is_reloaded_without_restart(tmp_path: Path) -> None:
    crl = tmp_path / "revoked.txt"
    crl.write_text("# revoked tickets\n")
    store = TrustStore({ISSUER: ISSUER_PUB}, RevocationList(crl, check_every_s=0.0))
    v = RequestVerifier(store)
    amb = holder(["emergency"])
    assert verify(v, amb.envelope(b"x", 1, NOW), "emergency").accepted
    crl.write_text(f"# revoked tickets\n{ISSUER}/{amb.ticket.ticket_id}   # stolen\n")
    assert verify(v, amb.envelope(b"x", 2, NOW), "emergency").reason is RefusalReason.REVOKED
    crl.write_text("garbage line\n")  # a broken edit keeps the last good list
    assert verify(v, amb.envelope(b"x", 3, NOW), "emergency").reason is RefusalReason.REVOKED
    assert store.revocations.errors >= 1
    with pytest.raises(ConfigError, match="line 1"):
        RevocationList(crl)


def test_replay_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "replay.json"
    now = int(time.time() * 1000)  # the state is swept against the wall clock when loaded
    v = make_verifier(state_file=state)  # type: ignore[arg-type]
    env = AMB.envelope(b"x", 7, now)
    assert verify(v, env, "emergency", now).accepted
    assert AMB.ticket.ticket_id not in state.read_text()  # a hash, not the pseudonym
    again = make_verifier(state_file=state)  # type: ignore[arg-type]
    assert verify(again, env, "emergency", now).reason is RefusalReason.REPLAYED
    assert verify(again, AMB.envelope(b"x", 8, now), "emergency", now).accepted
    # One ticket's sequence numbers do not touch another's (no shared depot counter).
    assert verify(again, bus_request(seq=1, ts=now), now=now).accepted


def test_deferred_replay_state_keeps_the_restart_guarantee(tmp_path: Path) -> None:
    """Written off the hot path: after a crash (no clean close) a request accepted after the
    last write cannot be replayed; after a clean stop nothing more is refused than before."""
    state = tmp_path / "replay.json"
    now = int(time.time() * 1000)
    v = make_verifier(state_file=state, defer_writes=True)  # type: ignore[arg-type]
    assert verify(v, AMB.envelope(b"x", 7, now), "emergency", now).accepted
    assert not state.exists() and v.replay.dirty  # nothing written on the hot path
    v.replay.write(v.replay.snapshot())  # the gateway's background write
    late = AMB.envelope(b"x", 8, now)
    assert verify(v, late, "emergency", now).accepted  # accepted after the last write, then a crash
    crashed = make_verifier(state_file=state, defer_writes=True)  # type: ignore[arg-type]
    assert verify(crashed, late, "emergency", now).reason is RefusalReason.REPLAYED
    assert verify(crashed, AMB.envelope(b"x", 9, now), "emergency", now).reason is RefusalReason.REPLAYED
    fresh = int(time.time() * 1000) + 1
    assert verify(crashed, AMB.envelope(b"x", 9, fresh), "emergency", fresh).accepted  # newly signed
    crashed.replay.close()  # a clean stop
    restarted = make_verifier(state_file=state, defer_writes=True)  # type: ignore[arg-type]
    assert verify(restarted, AMB.envelope(b"x", 9, fresh), "emergency", fresh).reason is RefusalReason.REPLAYED
    assert verify(restarted, AMB.envelope(b"x", 10, now), "emergency", fresh).accepted


def test_failed_verifications_are_budgeted_per_client() -> None:
    v = make_verifier(failure_rate_per_s=1.0, failure_burst=3)  # type: ignore[arg-type]
    for k in range(3):
        forged = BUS.envelope(b"x", 10 + k, NOW).model_copy(update={"payload": b"evil"})
        assert verify(v, forged, client="mallory").reason is RefusalReason.BAD_SIGNATURE
    # Budget spent: refused without a signature check, genuine or not, from that client...
    assert verify(v, bus_request(seq=20), client="mallory").reason is RefusalReason.OVER_FAILURE_RATE
    # ...but the bus on its own login is not locked out by someone else's forgeries.
    assert verify(v, bus_request(seq=21), client="bus-7").accepted
    later = NOW + 1001
    assert verify(v, BUS.envelope(b"x", 22, later), now=later, client="mallory").accepted


def test_unsigned() -> None:
    v = make_verifier()
    unsigned = bus_request().model_copy(update={"signature": b""})
    assert verify(v, unsigned, "public_transport", NOW).reason is RefusalReason.UNSIGNED
    assert verify(v, None, "public_transport", NOW).reason is RefusalReason.UNSIGNED
    body = json.loads(bus_request().model_dump_json())
    del body["signature"]
    assert verify(v, json.dumps(body), "public_transport", NOW).reason is RefusalReason.UNSIGNED
    assert verify(v, body, "public_transport", NOW).reason is RefusalReason.UNSIGNED


@settings(max_examples=25, deadline=None)
@given(rate=st.floats(0.5, 20.0), burst=st.integers(1, 8))
def test_rate_limit_refuses_beyond_burst_and_recovers(rate: float, burst: int) -> None:
    v = make_verifier(max_rate_per_s=rate, burst=burst)
    seq = 0
    for _ in range(burst):
        seq += 1
        assert verify(v, bus_request(seq=seq), "public_transport", NOW).accepted
    seq += 1
    over = verify(v, bus_request(seq=seq), "public_transport", NOW)
    assert over.reason is RefusalReason.OVER_RATE
    # the refused request did not consume its sequence number; one token later it passes
    later = NOW + int(1000 / rate) + 1
    assert verify(v, bus_request(ts=later, seq=seq), "public_transport", later).accepted
    assert verify(v, bus_request(ts=later, seq=seq + 1), "public_transport", later).reason is (
        RefusalReason.OVER_RATE
    )
    # other keys have their own bucket
    assert verify(v, AMB.envelope(b"x", 1, later), "emergency", later).accepted


def test_replays_and_forgeries_do_not_drain_the_bucket() -> None:
    v = make_verifier(burst=2, max_rate_per_s=0.5)
    good = bus_request(seq=1)
    assert verify(v, good, "public_transport", NOW).accepted
    for _ in range(20):
        assert verify(v, good, "public_transport", NOW).reason is RefusalReason.REPLAYED
        forged = bus_request(seq=50).model_copy(update={"payload": b"evil"})
        assert verify(v, forged, "public_transport", NOW, client="mallory").reason in (
            RefusalReason.BAD_SIGNATURE, RefusalReason.OVER_FAILURE_RATE)
    assert v.counts["bad_signature"] == 5 and v.counts["over_failure_rate"] == 15
    assert verify(v, bus_request(seq=2), "public_transport", NOW, client="bus-7").accepted


def test_state_is_bounded_and_eviction_keeps_replay_protection() -> None:
    v = make_verifier(window_s=5.0)
    req = bus_request(ts=NOW + 5000, seq=7)  # timestamp at the future edge of the window
    assert verify(v, req, "public_transport", NOW).accepted
    assert v.tracked["replay"] == 1
    # 9.9 s later the request is still inside its window: the key must still be tracked
    t = NOW + 9900
    assert verify(v, req, "public_transport", t).reason is RefusalReason.REPLAYED
    assert v.tracked["replay"] == 1
    # once the newest request is stale, the state goes; a replay is refused as stale anyway
    t = NOW + 60_000
    assert verify(v, req, "public_transport", t).reason is RefusalReason.STALE_OR_FUTURE
    assert v.tracked["replay"] == 0 and v.tracked["rate"] == 0


# ----------------------------------------------------------------------------- hostile input

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
envelope_fields = st.fixed_dictionaries(
    {},
    optional={
        "payload": json_values | st.sampled_from(["!!!", "AAAA", "", "===="]),
        "ticket": json_values | st.just(json.loads(BUS.ticket.model_dump_json())),
        "timestamp_ms": json_values | st.sampled_from([NOW, -1, 2**70]),
        "sequence": json_values | st.sampled_from([1, -5, 2**64, "1"]),
        "signature": json_values | st.sampled_from(["", "AA==", "x" * 88, "%%%"]),
        "extra": json_values,
    },
)
junk = (
    st.binary(max_size=200)
    | st.text(max_size=200)
    | json_values
    | envelope_fields
    | envelope_fields.map(json.dumps)
    | st.builds(object)
    | st.integers()
)


@settings(max_examples=300, deadline=None)
@given(envelope=junk, cls=st.text(max_size=20) | st.sampled_from(["emergency", "public_transport"]))
def test_junk_is_refused_never_raises(envelope: object, cls: str) -> None:
    v = make_verifier()
    verdict = verify(v, envelope, cls, NOW)
    assert not verdict.accepted and verdict.payload is None
    assert sum(v.counts.values()) == 1


@settings(max_examples=50, deadline=None)
@given(junk_json=st.binary(max_size=64).map(lambda b: b.hex()))
def test_bad_base64_is_malformed(junk_json: str) -> None:
    body = json.loads(bus_request().model_dump_json())
    body["signature"] = "*" + junk_json
    assert verify(make_verifier(), json.dumps(body), "public_transport", NOW).reason is (
        RefusalReason.MALFORMED
    )


def test_wrong_types_are_malformed() -> None:
    body = json.loads(bus_request().model_dump_json())
    v = make_verifier()
    for field, value in [("timestamp_ms", str(NOW)), ("sequence", 1.0), ("ticket", 5), ("payload", [1])]:
        bad = dict(body, **{field: value})
        assert verify(v, bad, "public_transport", NOW).reason is RefusalReason.MALFORMED, field
    assert verify(v, dict(body, colour="red"), "public_transport", NOW).reason is RefusalReason.MALFORMED


# ------------------------------------------------------------------------------ trust store


def test_trust_store_from_directory(tmp_path: Path) -> None:
    write_public_key_pem(tmp_path / "issuers" / f"{ISSUER}.pem", ISSUER_PUB)
    (tmp_path / "revoked.txt").write_text(f"{ISSUER}/{BUS.ticket.ticket_id}\n")
    store = TrustStore.load(tmp_path)
    assert store.issuer_ids() == [ISSUER]
    v = RequestVerifier(store)
    assert verify(v, AMB.envelope(b"x", 1, NOW), "emergency").accepted
    assert verify(v, bus_request()).reason is RefusalReason.REVOKED
    with pytest.raises(ConfigError, match="issuers/"):
        TrustStore.load(tmp_path / "issuers")


def test_trust_store_from_toml_and_json(tmp_path: Path) -> None:
    write_public_key_pem(tmp_path / "keys" / "root.pem", ISSUER_PUB)
    pem = (tmp_path / "keys" / "root.pem").read_text()
    (tmp_path / "revoked.txt").write_text("")
    toml = f'revocation_list = "revoked.txt"\n[[issuers]]\nissuer_id = "{ISSUER}"\npublic_key_file = "keys/root.pem"\n'
    (tmp_path / "trust.toml").write_text(toml)
    store = TrustStore.load(tmp_path / "trust.toml")
    assert store.issuer_ids() == [ISSUER] and store.revocations.path == tmp_path / "revoked.txt"

    data = {"issuers": [{"issuer_id": ISSUER, "public_key_pem": pem}]}
    (tmp_path / "trust.json").write_text(json.dumps(data))
    assert TrustStore.load(tmp_path / "trust.json").issuer_ids() == [ISSUER]

    data["issuers"][0]["classes"] = ["emergency"]  # a typo'd or stray field is an error
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"bad\.json"):
        TrustStore.load(tmp_path / "bad.json")
    del data["issuers"][0]["classes"]
    data["issuers"][0]["public_key_pem"] = "not a key"
    (tmp_path / "bad2.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="not a PEM public key"):
        TrustStore.load(tmp_path / "bad2.json")
    (tmp_path / "bad3.toml").write_text('revocation_list = "missing.txt"\n')
    with pytest.raises(ConfigError, match="missing.txt"):
        TrustStore.load(tmp_path / "bad3.toml")


def test_conflicting_keys_for_one_issuer_are_refused() -> None:
    store = make_store()
    with pytest.raises(ConfigError, match="two different public keys"):
        store.add_issuer(ISSUER, OTHER_PUB)
    with pytest.raises(ConfigError, match="issuer id"):
        store.add_issuer("a|b", OTHER_PUB)


def test_private_key_file_round_trip(tmp_path: Path) -> None:
    path = write_private_key_pem(tmp_path / "k.pem", BUS.key)
    assert os.stat(path).st_mode & 0o777 == 0o600
    key = load_private_key_pem(path)
    assert verify(make_verifier(), sign_request(b"x", key, BUS.ticket, NOW, 1)).accepted


def test_issue_ticket_script_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    from ivri.its import decode_json

    script = Path(__file__).resolve().parents[1] / "deploy" / "pki" / "issue_ticket.py"
    spec = importlib.util.spec_from_file_location("issue_ticket", script)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    pki, srem = tmp_path / "pki", Path(__file__).resolve().parents[1] / "docs" / "its-samples" / "srem_bus.json"
    assert tool.main(["init-issuer", "--issuer-id", "nl-ut-root", "--out", str(pki)]) == 0
    assert tool.main(["issue", "--issuer-key", str(pki / "issuer-key.pem"), "--issuer-id", "nl-ut-root",
                      "--classes", "public_transport", "--scope", "nl/J101", "--ticket-id", "bus-demo",
                      "--out", str(pki / "tickets")]) == 0
    capsys.readouterr()
    assert tool.main(["sign", "--ticket", str(pki / "tickets" / "bus-demo.ticket.json"),
                      "--key", str(pki / "tickets" / "bus-demo.key.pem"), "--srem", str(srem), "--eta", "20"]) == 0
    envelope = capsys.readouterr().out.strip()
    store = TrustStore.load(pki / "trust")
    v = RequestVerifier(store)
    auth = v.authenticate(envelope, region="nl", intersection_id="J101", now_ms=int(time.time() * 1000))
    assert auth, auth.reason
    payload = decode_json(auth.payload, "srem")  # type: ignore[arg-type]
    ids = (payload.header.station_id, payload.requestor.id)
    assert v.authorise(auth, "public_transport", int(time.time() * 1000), ids).accepted
    assert tool.main(["revoke", "--trust", str(pki / "trust"), "--issuer-id", "nl-ut-root",
                      "--ticket-id", "bus-demo"]) == 0
    store.revocations.check_every_s = 0.0
    assert v.authenticate(envelope, region="nl", intersection_id="J101",
                          now_ms=int(time.time() * 1000)).reason is RefusalReason.REVOKED
    assert tool.main(["issue", "--issuer-key", str(pki / "issuer-key.pem"), "--issuer-id", "x",
                      "--classes", "vip", "--scope", "nl/J101", "--out", str(tmp_path)]) == 1
    assert "unknown class" in capsys.readouterr().err
