"""Turn a TLCGen controller (:mod:`ivri.tlcgen.reader`) into ivri's intersection model.

Every time in the file is in tenths of a second; ivri's are seconds. What ivri represents is
converted (``docs/tlcgen.md`` has the field-by-field table); everything else is reported in
:attr:`Imported.warnings`, one line each, and never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from ivri.config import (
    ConflictConfig,
    DetectorConfig,
    IntersectionConfig,
    PriorityIngressConfig,
    SignalGroupConfig,
    format_validation_error,
)
from ivri.errors import ConfigError
from ivri.sumo.network import MAX_GREEN_S
from ivri.wait_floor import with_wait_floor

from .mapping import TlcMap, group_id
from .reader import FICTITIOUS, TlcController, TlcSignalGroup

__all__ = ["MODES", "Imported", "convert"]

#: FaseTypeEnum -> ivri mode.
MODES = {"Auto": "motor", "Fiets": "bicycle", "Voetganger": "pedestrian", "OV": "bus"}
#: DetectorTypeEnum values that ivri's detector kinds represent.
_DETECTOR_KINDS = {"Kop": "stopline", "Lang": "stopline", "Verweg": "extension"}
_ON = ("Altijd", "SchAan")
#: Priority settings that ivri's applications do not take over, reported when present.
_PRIO_SETTINGS = ("RijTijdBeperktgehinderd", "RijTijdGehinderd", "OnderMaximum", "GroenBewaking",
                  "BlokkeertijdNaPrioIngreep", "BezettijdPrioGehinderd", "MinimaleRoodtijd",
                  "AfkappenConflicten", "AfkappenConflictenPrio", "VasthoudenGroen",
                  "TussendoorRealiseren", "GeconditioneerdePrioriteit", "Inmeldingen", "Uitmeldingen")
_HD_SETTINGS = ("RijTijdBeperktgehinderd", "RijTijdGehinderd", "GroenBewaking")


def _s(tenths: int) -> float:
    return round(tenths / 10.0, 1)


@dataclass
class Imported:
    """The result of :func:`convert`."""

    config: IntersectionConfig
    warnings: list[str] = field(default_factory=list)
    #: Pairs the file marks as green-green conflicts (GK, GKL): allowed green together.
    green_conflicts: set[frozenset[str]] = field(default_factory=set)
    #: The green-time set whose maximum greens were used.
    green_set: str | None = None


def _green_set(ctl: TlcController, wanted: str | None, warnings: list[str]) -> tuple[str | None, str, dict[str, int]]:
    names = [s.name for s in ctl.green_sets]
    if wanted is not None:
        if wanted not in names:
            raise ConfigError(f"TLCGen file {ctl.source}: no green-time set {wanted!r} "
                              f"(it has {', '.join(names) or 'none'})")
        chosen = wanted
    elif ctl.default_green_set in names:
        chosen = ctl.default_green_set
    elif len(names) == 1:
        chosen = names[0]
    elif not names:
        warnings.append("the file has no green-time set: maximum greens are ivri's defaults per mode")
        return None, "MaxGroentijden", {}
    else:
        raise ConfigError(f"TLCGen file {ctl.source}: {len(names)} green-time sets ({', '.join(names)}) "
                          "and no default period naming one: choose one with --green-set")
    others = sorted({f"{p} ({s})" for p, s in ctl.period_green_sets.items() if s != chosen})
    if others:
        warnings.append(f"periods with other green-time sets are not switched: {', '.join(others)}; "
                        f"ivri runs set {chosen!r} all day")
    gs = next(s for s in ctl.green_sets if s.name == chosen)
    return chosen, gs.type, gs.greens


def _signal_group(sg: TlcSignalGroup, mode: str, set_type: str, greens: dict[str, int],
                  mapping: TlcMap | None, warnings: list[str]) -> SignalGroupConfig:
    gid = group_id(sg.name)
    min_green = _s(max(sg.guaranteed_green, sg.fixed_green))
    if min_green <= 0.0:
        raise ConfigError(f"signal group {sg.name}: TGG and TFG are 0: a green needs a guaranteed length")
    if sg.name in greens:
        w = greens[sg.name]
        max_green = _s(sg.fixed_green + w) if set_type == "VerlengGroentijden" else _s(w)
    else:
        max_green = MAX_GREEN_S[mode]
        warnings.append(f"{gid}: no maximum green in the green-time set: ivri's default {max_green:g} s")
    if max_green < min_green:
        warnings.append(f"{gid}: maximum green {max_green:g} s is below the guaranteed green "
                        f"{min_green:g} s: raised to it")
        max_green = min_green
    links = mapping.groups.get(gid) if mapping is not None else None
    if mapping is not None and (links is None or not links.links):
        warnings.append(f"{gid}: no SUMO links in the mapping: it runs in the core but shows on no signal")
    return SignalGroupConfig(
        id=gid, mode=mode, amber_s=_s(sg.amber), min_green_s=min_green, max_green_s=max_green,  # type: ignore[arg-type]
        min_red_s=_s(sg.guaranteed_red),
        sumo_links=links.links if links is not None else (),
        lanes=links.lanes if links is not None else (),
    )


def _intergreen_s(ctl: TlcController, value: int, amber_s: float) -> float:
    # Intergroen: from the end of green. Ontruimingstijd: from the end of amber (the start of
    # red), so the intergreen adds the leaving group's amber; a negative clearance time is
    # not used in Dutch practice without intergroen (it counts as 0).
    return _s(value) if ctl.intergreen else round(amber_s + max(_s(value), 0.0), 1)


def _conflicts(ctl: TlcController, amber: dict[str, float], imported: Imported) -> list[ConflictConfig]:
    warnings = imported.warnings
    entries = {}
    for c in ctl.conflicts:
        for name in (c.leaving, c.entering):
            if group_id(name) not in amber:
                raise ConfigError(f"TLCGen file {ctl.source}: conflict {c.leaving} -> {c.entering} "
                                  f"names unknown signal group {name}")
        entries[(c.leaving, c.entering)] = c
    out = []
    done: set[frozenset[str]] = set()
    for (a, b), c in entries.items():
        pair = frozenset((a, b))
        if pair in done:
            continue
        done.add(pair)
        back = entries.get((b, a))
        if back is None:
            raise ConfigError(f"TLCGen file {ctl.source}: conflict {a} -> {b} has no entry {b} -> {a}: "
                              "a conflict needs a time each way")
        codes = {c.code, back.code} - {None}
        ga, gb = group_id(a), group_id(b)
        if codes & {"GK", "GKL"}:
            imported.green_conflicts.add(frozenset((ga, gb)))
            continue
        times = []
        for leave, entry in ((a, c), (b, back)):
            gl = group_id(leave)
            if entry.code == FICTITIOUS:
                times.append(amber[gl])
                continue
            assert entry.value is not None
            ig = _intergreen_s(ctl, entry.value, amber[gl])
            if entry.guaranteed is not None:
                floor = _intergreen_s(ctl, entry.guaranteed, amber[gl])
                if ig < floor:
                    warnings.append(f"conflict {entry.leaving} -> {entry.entering}: {ig:g} s is below its "
                                    f"guaranteed {floor:g} s: the guaranteed time is used")
                    ig = floor
            if ig < amber[gl]:
                raise ConfigError(f"TLCGen file {ctl.source}: intergreen {entry.leaving} -> {entry.entering} "
                                  f"is {ig:g} s, shorter than the amber of {entry.leaving} ({amber[gl]:g} s)")
            times.append(ig)
        if FICTITIOUS in codes:
            warnings.append(f"fictitious conflict {a}/{b} (FK): imported as a conflict with intergreen = amber")
        out.append(ConflictConfig(between=(ga, gb), intergreen_s=(times[0], times[1])))
    return out


def _stages(ctl: TlcController, ids: set[str], warnings: list[str]) -> tuple[tuple[str, ...], ...]:
    stages = []
    for m in ctl.modules:
        members = tuple(group_id(n) for n in m.groups)
        unknown = [g for g in members if g not in ids]
        if unknown:
            raise ConfigError(f"TLCGen file {ctl.source}: module {m.name} names unknown signal group(s) "
                              f"{', '.join(unknown)}")
        if members:
            stages.append(members)
        for g, alts in m.alternatives.items():
            warnings.append(f"module {m.name}: {', '.join(alts)} may go instead of {g} (alternatives): "
                            "ivri realises any calling group that conflicts with nothing green or requested")
    if ctl.rest_module:
        warnings.append(f"rest module {ctl.rest_module} (WachtModule): ivri rests in the stage that runs")
    for name, allowed in sorted(ctl.alternative_allowed.items()):
        if not allowed:
            warnings.append(f"{group_id(name)}: the file forbids its alternative realisation; ivri's "
                            "actuated controller realises it whenever it conflicts with nothing")
    in_stage = {g for s in stages for g in s}
    for g in sorted(ids - in_stage):
        if stages:
            warnings.append(f"{g}: in no module: served only by alternative realisation or the "
                            "core's anti-starvation")
    return tuple(stages)


def _detectors(ctl: TlcController, mapping: TlcMap | None, warnings: list[str]) -> list[DetectorConfig]:
    out = []
    for sg in ctl.signal_groups:
        gid = group_id(sg.name)
        for d in sg.detectors:
            kind = _DETECTOR_KINDS.get(d.type)
            if kind is None:
                if d.type.startswith("Knop"):
                    warnings.append(f"detector {d.name} of {gid} ({d.type}): push buttons are not "
                                    "simulated; ivri calls pedestrians from the persons waiting")
                else:
                    warnings.append(f"detector {d.name} of {gid} ({d.type}): not represented")
                continue
            place = mapping.detectors.get(d.name) if mapping is not None else None
            if place is None:
                warnings.append(f"detector {d.name} of {gid} ({d.type}): no lane in the mapping, left out")
                continue
            out.append(DetectorConfig(id=d.name, group=gid, lane=place.lane, kind=kind,  # type: ignore[arg-type]
                                      pos_m=-place.distance_m))
    if out:
        warnings.append("detectors: ivri places its own loops in SUMO (stop line and 40 m on every "
                        "lane of a group); the file's detectors are kept in the config for reference")
    return out


def _priority(ctl: TlcController, modes: dict[str, str], warnings: list[str]) -> list[PriorityIngressConfig]:
    out = []
    for p in ctl.prio:
        gid = group_id(p.group)
        if gid not in modes:
            raise ConfigError(f"TLCGen file {ctl.source}: priority ingress names unknown signal group {p.group}")
        label = f"priority ingress {p.group}{p.name}"
        kind = {"Bus": "bus", "Tram": "tram"}.get(p.vehicle)
        if kind is None:
            warnings.append(f"{label} ({p.vehicle}): not represented; ivri's own applications "
                            "(schwung, truck) serve cyclists and trucks on every group")
            continue
        out.append(PriorityIngressConfig(group=gid, kind=kind, travel_time_s=_s(p.travel_time) or None))  # type: ignore[arg-type]
        rest = [f"{k}={p.settings[k]}" for k in _PRIO_SETTINGS if k in p.settings]
        if rest:
            warnings.append(f"{label}: not represented ({', '.join(rest)}); ivri's bus application "
                            "sees buses by their CAMs and applies its own class limits")
    for h in ctl.hd:
        gid = group_id(h.group)
        if gid not in modes:
            raise ConfigError(f"TLCGen file {ctl.source}: emergency ingress names unknown signal group {h.group}")
        out.append(PriorityIngressConfig(group=gid, kind="emergency"))
        rest = [f"RijTijdOngehinderd={h.travel_time}"] + [f"{k}={h.settings[k]}" for k in _HD_SETTINGS
                                                           if k in h.settings]
        warnings.append(f"emergency ingress {h.group}: not represented ({', '.join(rest)}); GreenFlow "
                        "requests green from 1000 m and holds it until the vehicle has passed")
    return out


def convert(ctl: TlcController, mapping: TlcMap | None = None, green_set: str | None = None) -> Imported:
    """ivri's intersection for ``ctl`` (placed on a SUMO traffic light when ``mapping`` is given).

    ``green_set`` picks a green-time set by name; default: the set of the default period.
    Raises :class:`~ivri.errors.ConfigError` naming the problem for what cannot be converted
    safely (a conflict without its reverse time, an intergreen below the amber, a module with
    conflicting groups, an unknown signal group).
    """
    warnings: list[str] = []
    imported = Imported(config=None, warnings=warnings)  # type: ignore[arg-type]
    chosen, set_type, greens = _green_set(ctl, green_set, warnings)
    imported.green_set = chosen
    tram_groups = {p.group for p in ctl.prio if p.vehicle == "Tram"}
    groups = []
    for sg in ctl.signal_groups:
        mode = MODES.get(sg.type)
        if mode is None:
            raise ConfigError(f"TLCGen file {ctl.source}: signal group {sg.name} has type {sg.type!r} "
                              f"(expected {', '.join(MODES)})")
        if mode == "bus" and sg.name in tram_groups:
            mode = "tram"
        gid = group_id(sg.name)
        if sg.meeverlengen in _ON and mode in ("bicycle", "pedestrian"):
            warnings.append(f"{gid}: Meeverlengen {sg.meeverlengen}: ivri keeps {mode} groups green along "
                            "with their stage only where their clearance delays no one")
        elif sg.meeverlengen not in _ON and mode not in ("bicycle", "pedestrian"):
            warnings.append(f"{gid}: Meeverlengen {sg.meeverlengen}: ivri keeps {mode} groups green "
                            "along with their stage")
        if sg.fixed_request != "Nooit":
            warnings.append(f"{gid}: fixed request (VasteAanvraag {sg.fixed_request}) not represented: "
                            "it is served on demand")
        if sg.rest_green != "Nooit":
            warnings.append(f"{gid}: rest green (Wachtgroen {sg.rest_green}): ivri rests in the stage that runs")
        groups.append(_signal_group(sg, mode, set_type, greens, mapping, warnings))
    if mapping is not None:
        known = {g.id for g in groups}
        extra = sorted(set(mapping.groups) - known)
        if extra:
            raise ConfigError(f"the mapping names signal group(s) {', '.join(extra)} that the TLCGen file "
                              "does not have")
    amber = {g.id: g.amber_s for g in groups}
    conflicts = _conflicts(ctl, amber, imported)
    ids = set(amber)
    stages = _stages(ctl, ids, warnings)
    detectors = _detectors(ctl, mapping, warnings)
    priority = _priority(ctl, {g.id: g.mode for g in groups}, warnings)
    for what, n in sorted(ctl.unsupported.items()):
        warnings.append(f"{what}: {n} entr{'y' if n == 1 else 'ies'} not represented")
    if stages:
        # The core's anti-starvation must not pre-empt a regular cycle (see ivri.wait_floor).
        groups = with_wait_floor(groups, conflicts, stages)
    ident = (mapping.intersection_id or mapping.tls_id) if mapping is not None else ctl.name
    try:
        imported.config = IntersectionConfig(
            id=ident, tls_id=mapping.tls_id if mapping is not None else None,
            signal_groups=tuple(groups), conflicts=tuple(conflicts), detectors=tuple(detectors),
            stages=stages, priority=tuple(priority),
        )
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"TLCGen file {ctl.source}")) from None
    return imported
