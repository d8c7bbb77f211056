"""Authorisation of priority requests: signatures, freshness, replay, rate, and hostile input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivri.errors import ConfigError
from ivri.gateway.security import (
    RefusalReason,
    RequestVerifier,
    SignedRequest,
    TrustStore,
    generate_key_pair,
    load_private_key_pem,
    sign_request,
    write_private_key_pem,
    write_public_key_pem,
    write_trust_dir_entry,
)

NOW = 1_700_000_000_000
BUS_PRIV, BUS_PUB = generate_key_pair()
AMB_PRIV, AMB_PUB = generate_key_pair()
OTHER_PRIV, _ = generate_key_pair()


def make_store() -> TrustStore:
    store = TrustStore()
    store.add("bus-1", BUS_PUB, ["public_transport"])
    store.add("amb-1", AMB_PUB, ["emergency", "public_transport"])
    return store


def make_verifier(**kw: float) -> RequestVerifier:
    return RequestVerifier(make_store(), **kw)  # type: ignore[arg-type]


def bus_request(payload: bytes = b"srem", ts: int = NOW, seq: int = 1) -> SignedRequest:
    return sign_request(payload, BUS_PRIV, "bus-1", ts, seq)


def flip_bit(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


# ------------------------------------------------------------------------- basic behaviour


@settings(max_examples=40, deadline=None)
@given(payload=st.binary(max_size=300), seq=st.integers(0, 2**40), skew=st.integers(-5000, 5000))
def test_signed_request_accepted_once_then_replayed(payload: bytes, seq: int, skew: int) -> None:
    v = make_verifier()
    req = sign_request(payload, BUS_PRIV, "bus-1", NOW + skew, seq)
    first = v.verify(req, "public_transport", NOW)
    assert first.accepted and first.payload == payload
    again = v.verify(req, "public_transport", NOW)
    assert again.reason is RefusalReason.REPLAYED and again.payload is None
    assert v.counts["accepted"] == 1 and v.counts[RefusalReason.REPLAYED] == 1


def test_json_round_trip_is_accepted() -> None:
    v = make_verifier()
    wire = bus_request(b"\x00\xff binary").model_dump_json()
    assert '"payload":"' in wire  # base64 text, not a list of numbers
    assert v.verify(wire.encode(), "public_transport", NOW).accepted
    assert v.verify(json.loads(wire), "public_transport", NOW).reason is RefusalReason.REPLAYED


def test_older_sequence_is_replayed_newer_is_accepted() -> None:
    v = make_verifier()
    assert v.verify(bus_request(seq=10), "public_transport", NOW).accepted
    assert v.verify(bus_request(seq=9), "public_transport", NOW).reason is RefusalReason.REPLAYED
    assert v.verify(bus_request(seq=11), "public_transport", NOW).accepted


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_single_bit_flip_is_refused(data: st.DataObject) -> None:
    req = bus_request(b"priority please, line 12")
    field = data.draw(st.sampled_from(["payload", "signature"]))
    original: bytes = getattr(req, field)
    bit = data.draw(st.integers(0, len(original) * 8 - 1))
    forged = req.model_copy(update={field: flip_bit(original, bit)})
    verdict = make_verifier().verify(forged, "public_transport", NOW)
    assert verdict.reason is RefusalReason.BAD_SIGNATURE


@settings(max_examples=30, deadline=None)
@given(delta=st.integers(1, 10**9), sign=st.sampled_from([-1, 1]))
def test_timestamp_outside_window_is_refused(delta: int, sign: int) -> None:
    v = make_verifier(window_s=5.0)
    req = bus_request(ts=NOW + sign * (5000 + delta))
    assert v.verify(req, "public_transport", NOW).reason is RefusalReason.STALE_OR_FUTURE
    assert v.verify(bus_request(ts=NOW + sign * 5000), "public_transport", NOW).accepted


def test_unknown_key_and_wrong_key_and_class() -> None:
    v = make_verifier()
    unknown = sign_request(b"x", OTHER_PRIV, "stranger", NOW, 1)
    assert v.verify(unknown, "public_transport", NOW).reason is RefusalReason.UNKNOWN_KEY
    impostor = sign_request(b"x", OTHER_PRIV, "bus-1", NOW, 1)  # claims a trusted id
    assert v.verify(impostor, "public_transport", NOW).reason is RefusalReason.BAD_SIGNATURE
    assert v.verify(bus_request(), "emergency", NOW).reason is RefusalReason.NOT_AUTHORISED_FOR_CLASS
    amb = sign_request(b"x", AMB_PRIV, "amb-1", NOW, 1)
    assert v.verify(amb, "emergency", NOW).accepted
    # refusals never move state: the bus's sequence 1 is still fresh
    assert v.verify(bus_request(), "public_transport", NOW).accepted


def test_unsigned() -> None:
    v = make_verifier()
    unsigned = bus_request().model_copy(update={"signature": b""})
    assert v.verify(unsigned, "public_transport", NOW).reason is RefusalReason.UNSIGNED
    assert v.verify(None, "public_transport", NOW).reason is RefusalReason.UNSIGNED
    body = json.loads(bus_request().model_dump_json())
    del body["signature"]
    assert v.verify(json.dumps(body), "public_transport", NOW).reason is RefusalReason.UNSIGNED
    assert v.verify(body, "public_transport", NOW).reason is RefusalReason.UNSIGNED


@settings(max_examples=25, deadline=None)
@given(rate=st.floats(0.5, 20.0), burst=st.integers(1, 8))
def test_rate_limit_refuses_beyond_burst_and_recovers(rate: float, burst: int) -> None:
    v = make_verifier(max_rate_per_s=rate, burst=burst)
    seq = 0
    for _ in range(burst):
        seq += 1
        assert v.verify(bus_request(seq=seq), "public_transport", NOW).accepted
    seq += 1
    over = v.verify(bus_request(seq=seq), "public_transport", NOW)
    assert over.reason is RefusalReason.OVER_RATE
    # the refused request did not consume its sequence number; one token later it passes
    later = NOW + int(1000 / rate) + 1
    assert v.verify(bus_request(ts=later, seq=seq), "public_transport", later).accepted
    assert v.verify(bus_request(ts=later, seq=seq + 1), "public_transport", later).reason is (
        RefusalReason.OVER_RATE
    )
    # other keys have their own bucket
    assert v.verify(sign_request(b"x", AMB_PRIV, "amb-1", later, 1), "emergency", later).accepted


def test_replays_and_forgeries_do_not_drain_the_bucket() -> None:
    v = make_verifier(burst=2, max_rate_per_s=0.5)
    good = bus_request(seq=1)
    assert v.verify(good, "public_transport", NOW).accepted
    for _ in range(20):
        assert v.verify(good, "public_transport", NOW).reason is RefusalReason.REPLAYED
        forged = bus_request(seq=50).model_copy(update={"payload": b"evil"})
        assert v.verify(forged, "public_transport", NOW).reason is RefusalReason.BAD_SIGNATURE
    assert v.verify(bus_request(seq=2), "public_transport", NOW).accepted


def test_state_is_bounded_and_eviction_keeps_replay_protection() -> None:
    v = make_verifier(window_s=5.0)
    req = bus_request(ts=NOW + 5000, seq=7)  # timestamp at the future edge of the window
    assert v.verify(req, "public_transport", NOW).accepted
    assert v.tracked_keys == 1
    # 9.9 s later the request is still inside its window: the key must still be tracked
    t = NOW + 9900
    assert v.verify(req, "public_transport", t).reason is RefusalReason.REPLAYED
    assert v.tracked_keys == 1
    # once the newest request is stale, the state goes; a replay is refused as stale anyway
    t = NOW + 60_000
    assert v.verify(req, "public_transport", t).reason is RefusalReason.STALE_OR_FUTURE
    assert v.tracked_keys == 0


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
        "key_id": json_values | st.sampled_from(["bus-1", "amb-1", "a|b", "../x", ""]),
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
    verdict = v.verify(envelope, cls, NOW)
    assert not verdict.accepted and verdict.payload is None
    assert sum(v.counts.values()) == 1


@settings(max_examples=50, deadline=None)
@given(junk_json=st.binary(max_size=64).map(lambda b: b.hex()))
def test_bad_base64_is_malformed(junk_json: str) -> None:
    body = json.loads(bus_request().model_dump_json())
    body["signature"] = "*" + junk_json
    assert make_verifier().verify(json.dumps(body), "public_transport", NOW).reason is (
        RefusalReason.MALFORMED
    )


def test_wrong_types_are_malformed() -> None:
    body = json.loads(bus_request().model_dump_json())
    v = make_verifier()
    for field, value in [("timestamp_ms", str(NOW)), ("sequence", 1.0), ("key_id", 5), ("payload", [1])]:
        bad = dict(body, **{field: value})
        assert v.verify(bad, "public_transport", NOW).reason is RefusalReason.MALFORMED, field
    assert v.verify(dict(body, colour="red"), "public_transport", NOW).reason is RefusalReason.MALFORMED


# ------------------------------------------------------------------------------ trust store


def test_trust_store_from_directory(tmp_path: Path) -> None:
    write_trust_dir_entry(tmp_path, "amb-1", AMB_PUB, ["emergency", "public_transport"])
    write_trust_dir_entry(tmp_path, "bus-1", BUS_PUB, ["public_transport"])
    store = TrustStore.load(tmp_path)
    assert store.key_ids() == ["amb-1", "bus-1"]
    assert store.get("amb-1").classes == {"emergency", "public_transport"}  # type: ignore[union-attr]
    v = RequestVerifier(store)
    assert v.verify(sign_request(b"x", AMB_PRIV, "amb-1", NOW, 1), "emergency", NOW).accepted

    (tmp_path / "vip").mkdir()
    with pytest.raises(ConfigError, match="unknown priority class 'vip'"):
        TrustStore.load(tmp_path)


def test_trust_store_from_toml_and_json(tmp_path: Path) -> None:
    write_public_key_pem(tmp_path / "keys" / "bus.pem", BUS_PUB)
    amb_pem = write_public_key_pem(tmp_path / "amb.pem", AMB_PUB).read_text()
    toml = (
        '[[keys]]\nkey_id = "bus-1"\nclasses = ["public_transport"]\npublic_key_file = "keys/bus.pem"\n'
        f'[[keys]]\nkey_id = "amb-1"\nclasses = ["emergency"]\npublic_key_pem = """\n{amb_pem}"""\n'
    )
    (tmp_path / "trust.toml").write_text(toml)
    store = TrustStore.load(tmp_path / "trust.toml")
    assert store.key_ids() == ["amb-1", "bus-1"]

    data = {"keys": [{"key_id": "amb-1", "classes": ["emergency"], "public_key_pem": amb_pem}]}
    (tmp_path / "trust.json").write_text(json.dumps(data))
    assert TrustStore.load(tmp_path / "trust.json").key_ids() == ["amb-1"]

    data["keys"][0]["classes"] = ["emergencyy"]
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"bad\.json"):
        TrustStore.load(tmp_path / "bad.json")
    data["keys"][0]["classes"] = ["emergency"]
    data["keys"][0]["public_key_pem"] = "not a key"
    (tmp_path / "bad2.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="not a PEM public key"):
        TrustStore.load(tmp_path / "bad2.json")


def test_conflicting_keys_for_one_id_are_refused() -> None:
    store = make_store()
    with pytest.raises(ConfigError, match="two different public keys"):
        store.add("bus-1", AMB_PUB, ["public_transport"])
    with pytest.raises(ConfigError, match="key id"):
        store.add("a|b", AMB_PUB, ["public_transport"])


def test_private_key_file_round_trip(tmp_path: Path) -> None:
    path = write_private_key_pem(tmp_path / "k.pem", BUS_PRIV)
    assert os.stat(path).st_mode & 0o777 == 0o600
    key = load_private_key_pem(path)
    assert make_verifier().verify(
        sign_request(b"x", key, "bus-1", NOW, 1), "public_transport", NOW
    ).accepted
