"""The user-facing config: readable files in, clear errors for what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import ivri
from ivri.config import IntersectionConfig, load_network_config
from ivri.core.compile import compile_network, derive_stages
from ivri.errors import ConfigError

TOML = """
[[intersections]]
id = "J1"

[[intersections.signal_groups]]
id = "fc02"
min_green_s = 6
max_green_s = 40

[[intersections.signal_groups]]
id = "fc05"

[[intersections.signal_groups]]
id = "fc08"

[[intersections.signal_groups]]
id = "fc31"
mode = "pedestrian"
amber_s = 0

[[intersections.conflicts]]
between = ["fc02", "fc05"]
intergreen_s = [5.0, 4.5]

[[intersections.conflicts]]
between = ["fc05", "fc31"]
intergreen_s = [4.0, 9.0]
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_toml_compiles_to_arrays(tmp_path: Path) -> None:
    net = compile_network(load_network_config(_write(tmp_path, "x.toml", TOML)))
    idx = net.group_index[0]
    assert net.group_ids == (("fc02", "fc05", "fc08", "fc31"),)
    assert net.timing.conflict[0, idx["fc02"], idx["fc05"]]
    assert net.timing.conflict[0, idx["fc05"], idx["fc02"]]
    assert not net.timing.conflict[0, idx["fc02"], idx["fc08"]]
    assert net.timing.intergreen_s[0, idx["fc02"], idx["fc05"]] == 5.0
    assert net.timing.intergreen_s[0, idx["fc05"], idx["fc02"]] == 4.5
    assert net.timing.amber_s[0, idx["fc31"]] == 0.0
    assert net.timing.min_green_s[0, idx["fc02"]] == 6.0


def test_json_and_yaml_read_the_same(tmp_path: Path) -> None:
    import tomllib

    import yaml

    data = tomllib.loads(TOML)
    a = load_network_config(_write(tmp_path, "x.json", json.dumps(data)))
    b = load_network_config(_write(tmp_path, "x.yaml", yaml.safe_dump(data)))
    assert a == b


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("min_green_s = 6", "min_green_s = 60"), "min_green_s=60.0 is above max_green_s=40.0"),
        (("between = [\"fc02\", \"fc05\"]", "between = [\"fc02\", \"fc99\"]"), "unknown signal group 'fc99'"),
        (("intergreen_s = [5.0, 4.5]", "intergreen_s = [1.0, 4.5]"), "shorter than its amber"),
        (("max_green_s = 40", "max_gren_s = 40"), "max_gren_s"),
        (("mode = \"pedestrian\"", "mode = \"horse\""), "mode"),
    ],
)
def test_errors_name_field_and_problem(tmp_path: Path, edit: tuple[str, str], expected: str) -> None:
    path = _write(tmp_path, "bad.toml", TOML.replace(*edit))
    with pytest.raises(ConfigError) as info:
        load_network_config(path)
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_conflict_without_intergreen_is_an_error(tmp_path: Path) -> None:
    text = TOML.replace("intergreen_s = [4.0, 9.0]\n", "")
    with pytest.raises(ConfigError, match="intergreen_s"):
        load_network_config(_write(tmp_path, "bad.toml", text))


def test_unparsable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be parsed"):
        load_network_config(_write(tmp_path, "bad.toml", "[[intersections]\nid="))
    with pytest.raises(ConfigError, match="does not exist"):
        load_network_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="unknown format"):
        load_network_config(_write(tmp_path, "x.ini", "a=1"))


def test_stage_with_conflicting_groups_is_refused() -> None:
    with pytest.raises(ValueError, match="stage 0 holds conflicting groups"):
        IntersectionConfig(
            id="J",
            signal_groups=[{"id": "a"}, {"id": "b"}],
            conflicts=[{"between": ["a", "b"], "intergreen_s": [4, 4]}],
            stages=[["a", "b"]],
        )


def test_derived_stages_cover_every_group_without_conflicts() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(2, 12))
        pairs = [(a, b) for a in range(n) for b in range(a + 1, n) if rng.random() < 0.4]
        x = IntersectionConfig(
            id="J",
            signal_groups=[{"id": f"g{k}"} for k in range(n)],
            conflicts=[{"between": [f"g{a}", f"g{b}"], "intergreen_s": [4, 4]} for a, b in pairs],
        )
        stages = derive_stages(x)
        assert {g for s in stages for g in s} == set(x.group_ids())
        conflicting = {frozenset((f"g{a}", f"g{b}")) for a, b in pairs}
        for s in stages:
            assert not any(frozenset((p, q)) in conflicting for p in s for q in s if p != q)
            # maximal: no group outside could join
            for g in x.group_ids():
                if g not in s:
                    assert any(frozenset((g, q)) in conflicting for q in s)


def test_public_surface_is_declared() -> None:
    for name in ivri.__all__:
        assert hasattr(ivri, name), name
