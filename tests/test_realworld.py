"""The real-world test set: only the networks are unpacked from the wheel, safely; no network in tests."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from ivri.sumo_networks import realworld
from ivri.sumo_networks.realworld import (
    SOURCE_FILENAME,
    WHEEL_PREFIX,
    download_wheel,
    fetch,
    realworld_sumocfg,
    unpack_networks,
)

from ivri.errors import ConfigError


def _fake_wheel(path: Path, networks: tuple[str, ...] = ("cologne3", "ingolstadt7"),
                extra: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("sumo_rl/__init__.py", "print('package code')\n")
        z.writestr("sumo_rl-1.4.5.dist-info/LICENSE", "MIT License\n")
        for name in networks:
            z.writestr(f"{WHEEL_PREFIX}{name}/{name}.sumocfg", f"<configuration>{name}</configuration>\n")
            z.writestr(f"{WHEEL_PREFIX}{name}/{name}.net.xml", "<net/>\n")
            z.writestr(f"{WHEEL_PREFIX}{name}/{name}.rou.xml", "<routes/>\n")
        z.writestr(f"{WHEEL_PREFIX}grid4x4/grid4x4.sumocfg", "<configuration/>\n")
        for member, text in (extra or {}).items():
            z.writestr(member, text)
    return path


def test_unpacks_only_the_requested_networks(tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path / "sumo_rl-1.4.5-py3-none-any.whl")
    dest = tmp_path / "nets"
    found = unpack_networks(wheel, ["cologne3"], dest)
    assert found == {"cologne3": dest / "cologne3" / "cologne3.sumocfg"}
    assert sorted(p.name for p in (dest / "cologne3").iterdir()) == [
        SOURCE_FILENAME, "cologne3.net.xml", "cologne3.rou.xml", "cologne3.sumocfg"]
    assert found["cologne3"].read_text() == "<configuration>cologne3</configuration>\n"
    # Nothing else of the package, no other network, no leftover temporary folder.
    assert sorted(p.name for p in dest.iterdir()) == ["cologne3"]
    source = (dest / "cologne3" / SOURCE_FILENAME).read_text()
    assert "TAPASCologne" in source and "CC BY-NC-SA 3.0" in source and "sha256" in source


def test_unpacking_again_replaces_the_network(tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path / "w.whl")
    dest = tmp_path / "nets"
    unpack_networks(wheel, ["ingolstadt7"], dest)
    (dest / "ingolstadt7" / "stale.xml").write_text("old")
    unpack_networks(wheel, ["ingolstadt7"], dest)
    assert not (dest / "ingolstadt7" / "stale.xml").exists()
    assert "GPL-3.0" in (dest / "ingolstadt7" / SOURCE_FILENAME).read_text()


def test_a_member_that_leaves_its_folder_is_refused(tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path / "w.whl", extra={f"{WHEEL_PREFIX}cologne3/../../../evil.txt": "x"})
    dest = tmp_path / "nets"
    with pytest.raises(ConfigError, match="leaves its folder"):
        unpack_networks(wheel, ["cologne3"], dest)
    assert not (tmp_path / "evil.txt").exists()
    assert not (dest / "cologne3").exists()


def test_a_wheel_without_the_network_or_not_a_wheel_is_a_clear_error(tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path / "w.whl", networks=("cologne3",))
    with pytest.raises(ConfigError, match="ingolstadt21"):
        unpack_networks(wheel, ["ingolstadt21"], tmp_path / "nets")
    junk = tmp_path / "junk.whl"
    junk.write_text("not a zip")
    with pytest.raises(ConfigError, match="not a readable wheel"):
        unpack_networks(junk, ["cologne3"], tmp_path / "nets")
    with pytest.raises(ConfigError, match="unknown real-world network"):
        unpack_networks(wheel, ["atlantis"], tmp_path / "nets")


def test_fetch_uses_a_local_wheel_and_keeps_what_is_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(realworld.ENV_DIR, str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="ivri fetch-realworld cologne3"):
        realworld_sumocfg("cologne3")
    wheel = _fake_wheel(tmp_path / "w.whl")
    found = fetch(["cologne3", "ingolstadt7"], wheel=wheel)
    assert found["cologne3"] == tmp_path / "cache" / "cologne3" / "cologne3.sumocfg"
    assert realworld_sumocfg("ingolstadt7") == found["ingolstadt7"]
    # Already there: no wheel needed (a missing one would fail).
    assert fetch(["cologne3"], wheel=tmp_path / "gone.whl") == {"cologne3": found["cologne3"]}
    from ivri.runner import resolve_scenario

    assert resolve_scenario("realworld:cologne3") == ("cologne3", found["cologne3"].resolve())


def test_a_wheel_with_the_wrong_checksum_is_refused(tmp_path: Path) -> None:
    # A file already in the download folder is checked, not trusted (and pip is not called).
    _fake_wheel(tmp_path / f"sumo_rl-{realworld.SUMO_RL_VERSION}-py3-none-any.whl")
    with pytest.raises(ConfigError, match="SHA-256"):
        download_wheel(tmp_path)
