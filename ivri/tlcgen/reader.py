"""Read a TLCGen controller file (``.tlc``) into plain records, before any conversion.

TLCGen (open source, MIT) writes its ``ControllerModel`` with .NET's ``XmlSerializer``: the
root element ``<ControllerModel>``, one child element per property, and lists as a wrapper
element holding one element per item (``<Fasen><FaseCyclus>...</FaseCyclus></Fasen>``). All
times of signal groups, conflicts and green-time sets are integers in tenths of a second
(CCOL's time unit). This module reads only what ivri can use or must report; everything is
kept in the units of the file. :mod:`ivri.tlcgen.convert` turns it into an intersection.

Elements read (``docs/tlcgen.md`` has the field-by-field mapping):

* ``Data``: ``Naam``, ``Intergroen`` (True: conflict times are intergreen times; False:
  clearance times, "ontruimingstijden", counted from the end of amber);
* ``Fasen/FaseCyclus``: ``Naam``, ``Type`` (Auto, Fiets, Voetganger, OV), ``TFG``, ``TGG``,
  ``TGL``, ``TRG``, ``Meeverlengen``, ``VasteAanvraag``, ``Wachtgroen`` and its
  ``Detectoren/Detector`` (``Naam``, ``Type``, ``Rijstrook``);
* ``InterSignaalGroep/Conflicten/Conflict``: ``FaseVan``, ``FaseNaar``, ``Waarde`` (a number,
  or ``FK`` fictitious conflict, ``GK`` / ``GKL`` green-green conflict: allowed together),
  ``GarantieWaarde``; and the counts of ``Voorstarten``, ``Gelijkstarten``, ``Nalopen``,
  ``Meeaanvragen``, ``LateReleases``;
* ``GroentijdenSets/GroentijdenSet``: ``Naam``, ``Type`` (MaxGroentijden or
  VerlengGroentijden), ``Groentijd`` (``FaseCyclus``, ``Waarde``);
  ``PeriodenData/DefaultPeriodeGroentijdenSet`` and ``Perioden/Periode/GroentijdenSet``;
* ``ModuleMolen``: ``Modules/Module`` (``Naam``, ``Fasen/FaseCyclus`` with ``FaseCyclus``
  and ``Alternatieven/Fase``), ``FasenModuleData/FaseCyclusModuleData``
  (``AlternatiefToestaan``), ``WachtModule``;
* ``PrioData``: ``PrioIngrepen/PrioIngreep`` (``FaseCyclus``, ``Type``, the driving times and
  limits) and ``HDIngrepen/HDIngreep`` (``FaseCyclus``, ``RijTijdOngehinderd``,
  ``GroenBewaking``, ``Sirene``).

Raises :class:`~ivri.errors.ConfigError` naming the file and the element for malformed XML,
a wrong root, or a missing or non-numeric required element.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ivri.errors import ConfigError

__all__ = [
    "TlcConflict",
    "TlcController",
    "TlcDetector",
    "TlcGreenSet",
    "TlcHdIngress",
    "TlcModule",
    "TlcPrioIngress",
    "TlcSignalGroup",
    "read_tlc",
]

#: ``Waarde`` codes of ``ConflictModel`` (TLCGen serialises them as text).
FICTITIOUS = "FK"
GREEN_CONFLICTS = ("GK", "GKL")


@dataclass(frozen=True)
class TlcDetector:
    """A detector of a signal group (``DetectorModel``)."""

    name: str
    type: str               # DetectorTypeEnum: Kop, Lang, Verweg, File, Knop, KnopBinnen, ...
    lane_number: int | None  # Rijstrook, 1 = the group's first lane


@dataclass(frozen=True)
class TlcSignalGroup:
    """A signal group (``FaseCyclusModel``); times in tenths of a second."""

    name: str                # "02", "22", "31"
    type: str                # FaseTypeEnum: Auto, Fiets, Voetganger, OV
    fixed_green: int         # TFG, vastgroen
    guaranteed_green: int    # TGG, garantiegroen
    amber: int               # TGL, geel
    guaranteed_red: int      # TRG, garantierood
    meeverlengen: str        # NooitAltijdAanUitEnum: Nooit, Altijd, SchAan, SchUit
    fixed_request: str       # VasteAanvraag
    rest_green: str          # Wachtgroen
    detectors: tuple[TlcDetector, ...] = ()


@dataclass(frozen=True)
class TlcConflict:
    """One direction of a conflict (``ConflictModel``): ``leaving`` ends, ``entering`` starts."""

    leaving: str
    entering: str
    value: int | None        # tenths of a second; None for the codes
    code: str | None         # FK, GK, GKL (None for a number)
    guaranteed: int | None   # GarantieWaarde


@dataclass(frozen=True)
class TlcGreenSet:
    """A green-time set (``GroentijdenSetModel``): per group, tenths of a second."""

    name: str
    type: str                # MaxGroentijden or VerlengGroentijden
    greens: dict[str, int]


@dataclass(frozen=True)
class TlcModule:
    """A module (block, "blok") of the module mill: the groups it realises, with alternatives."""

    name: str
    groups: tuple[str, ...]
    alternatives: dict[str, tuple[str, ...]]  # per group of the module: groups that may go instead


@dataclass(frozen=True)
class TlcPrioIngress:
    """A priority ingress rule (``PrioIngreepModel``): bus, tram, cyclists, trucks."""

    group: str
    vehicle: str             # PrioIngreepVoertuigTypeEnum: Tram, Bus, Fiets, Vrachtwagen, NG
    name: str
    travel_time: int         # RijTijdOngehinderd
    settings: dict[str, str]  # the other settings, as written, for the report


@dataclass(frozen=True)
class TlcHdIngress:
    """An emergency-vehicle ingress rule (``HDIngreepModel``)."""

    group: str
    travel_time: int         # RijTijdOngehinderd
    settings: dict[str, str]


@dataclass(frozen=True)
class TlcController:
    """What ivri reads from one ``.tlc`` file."""

    source: str
    name: str
    intergreen: bool
    signal_groups: tuple[TlcSignalGroup, ...]
    conflicts: tuple[TlcConflict, ...]
    green_sets: tuple[TlcGreenSet, ...]
    default_green_set: str | None
    period_green_sets: dict[str, str]        # period name -> green-time set
    modules: tuple[TlcModule, ...]
    alternative_allowed: dict[str, bool]     # FasenModuleData: AlternatiefToestaan
    rest_module: str | None
    prio: tuple[TlcPrioIngress, ...]
    hd: tuple[TlcHdIngress, ...]
    #: Counts of the elements ivri does not represent, e.g. {"Nalopen": 2}.
    unsupported: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# XML helpers


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> ConfigError:
        return ConfigError(f"TLCGen file {self.source}: {where}: {what}")

    def child(self, el: ET.Element, tag: str, where: str) -> ET.Element:
        found = el.find(tag)
        if found is None:
            raise self.fail(where, f"missing element <{tag}>")
        return found

    def text(self, el: ET.Element, tag: str, where: str, default: str | None = None) -> str:
        found = el.find(tag)
        if found is None or found.text is None or not found.text.strip():
            if default is not None:
                return default
            raise self.fail(where, f"missing element <{tag}>")
        return found.text.strip()

    def integer(self, el: ET.Element, tag: str, where: str, default: int | None = None) -> int:
        raw = self.text(el, tag, where, None if default is None else str(default))
        try:
            return int(raw)
        except ValueError:
            raise self.fail(where, f"<{tag}> is {raw!r}, not a whole number (tenths of a second)") from None

    def optional_int(self, el: ET.Element, tag: str, where: str) -> int | None:
        found = el.find(tag)
        if found is None or found.get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true":
            return None
        if found.text is None or not found.text.strip():
            return None
        try:
            return int(found.text.strip())
        except ValueError:
            raise self.fail(where, f"<{tag}> is {found.text.strip()!r}, not a whole number") from None

    @staticmethod
    def items(el: ET.Element | None, wrapper: str, item: str) -> list[ET.Element]:
        if el is None:
            return []
        w = el.find(wrapper)
        return [] if w is None else list(w.findall(item))


def _settings(el: ET.Element, skip: set[str]) -> dict[str, str]:
    """The simple (text-only) child elements not in ``skip``, as written."""
    out = {}
    for c in el:
        if c.tag in skip or len(c) or c.text is None or not c.text.strip():
            continue
        out[c.tag] = c.text.strip()
    return out


# --------------------------------------------------------------------------------------------
# The reader


def read_tlc(path: str | Path) -> TlcController:
    """Read a TLCGen ``.tlc`` file.

    Raises :class:`~ivri.errors.ConfigError` naming the file and the problem when the file is
    missing, is not XML, is not a ``ControllerModel`` or lacks a required element.
    """
    path = Path(path)
    source = str(path)
    r = _Reader(source)
    if not path.is_file():
        raise ConfigError(f"TLCGen file {path} does not exist")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ConfigError(f"TLCGen file {path} is not well-formed XML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"TLCGen file {path} cannot be read: {exc}") from None
    if root.tag != "ControllerModel":
        raise ConfigError(f"TLCGen file {path}: the root element is <{root.tag}>, expected <ControllerModel>")

    data = r.child(root, "Data", "ControllerModel")
    name = r.text(data, "Naam", "Data", default=path.stem)
    intergreen = r.text(data, "Intergroen", "Data", default="false").lower() == "true"

    fasen = r.items(root, "Fasen", "FaseCyclus")
    if root.find("Fasen") is None:
        raise r.fail("ControllerModel", "missing element <Fasen>")
    if not fasen:
        raise r.fail("Fasen", "no <FaseCyclus>: the controller has no signal groups")
    groups = []
    for k, fc in enumerate(fasen):
        where = f"Fasen/FaseCyclus[{k + 1}]"
        gname = r.text(fc, "Naam", where)
        where = f"FaseCyclus {gname}"
        dets = []
        for d in r.items(fc, "Detectoren", "Detector"):
            dname = r.text(d, "Naam", f"{where}: Detector")
            dets.append(TlcDetector(
                name=dname,
                type=r.text(d, "Type", f"{where}: Detector {dname}", default="Overig"),
                lane_number=r.optional_int(d, "Rijstrook", f"{where}: Detector {dname}"),
            ))
        groups.append(TlcSignalGroup(
            name=gname,
            type=r.text(fc, "Type", where),
            fixed_green=r.integer(fc, "TFG", where, default=0),
            guaranteed_green=r.integer(fc, "TGG", where),
            amber=r.integer(fc, "TGL", where),
            guaranteed_red=r.integer(fc, "TRG", where, default=0),
            meeverlengen=r.text(fc, "Meeverlengen", where, default="Altijd"),
            fixed_request=r.text(fc, "VasteAanvraag", where, default="Nooit"),
            rest_green=r.text(fc, "Wachtgroen", where, default="Nooit"),
            detectors=tuple(dets),
        ))

    isg = root.find("InterSignaalGroep")
    conflicts = []
    for k, c in enumerate(r.items(isg, "Conflicten", "Conflict")):
        where = f"InterSignaalGroep/Conflicten/Conflict[{k + 1}]"
        van, naar = r.text(c, "FaseVan", where), r.text(c, "FaseNaar", where)
        where = f"conflict {van} -> {naar}"
        raw = r.text(c, "Waarde", where, default="")
        code: str | None = None
        value: int | None = None
        if raw in (FICTITIOUS, *GREEN_CONFLICTS):
            code = raw
        elif raw == "":
            continue  # TLCGen writes an empty Waarde for "no conflict"
        else:
            try:
                value = int(raw)
            except ValueError:
                raise r.fail(where, f"<Waarde> is {raw!r}: expected tenths of a second, FK, GK or GKL") from None
        conflicts.append(TlcConflict(van, naar, value, code, r.optional_int(c, "GarantieWaarde", where)))
    unsupported = {}
    for wrapper in ("Voorstarten", "Gelijkstarten", "Nalopen", "Meeaanvragen", "LateReleases"):
        n = len(list(isg.find(wrapper))) if isg is not None and isg.find(wrapper) is not None else 0
        if n:
            unsupported[wrapper] = n

    sets = []
    for k, gs in enumerate(r.items(root, "GroentijdenSets", "GroentijdenSet")):
        sname = r.text(gs, "Naam", f"GroentijdenSets/GroentijdenSet[{k + 1}]")
        greens = {}
        for g in gs.findall("Groentijd"):
            fc = r.text(g, "FaseCyclus", f"green-time set {sname}")
            w = r.optional_int(g, "Waarde", f"green-time set {sname}: {fc}")
            if w is not None:
                greens[fc] = w
        sets.append(TlcGreenSet(sname, r.text(gs, "Type", f"green-time set {sname}", default="MaxGroentijden"),
                                greens))
    per = root.find("PeriodenData")
    default_set = None
    period_sets: dict[str, str] = {}
    if per is not None:
        default_set = r.text(per, "DefaultPeriodeGroentijdenSet", "PeriodenData", default="") or None
        for p in r.items(per, "Perioden", "Periode"):
            gs_name = p.findtext("GroentijdenSet")
            if gs_name and gs_name.strip():
                period_sets[r.text(p, "Naam", "PeriodenData/Perioden/Periode")] = gs_name.strip()

    mill = root.find("ModuleMolen")
    modules = []
    alt_allowed: dict[str, bool] = {}
    rest_module = None
    if mill is not None:
        for k, m in enumerate(r.items(mill, "Modules", "Module")):
            mname = r.text(m, "Naam", f"ModuleMolen/Modules/Module[{k + 1}]")
            members = []
            alts: dict[str, tuple[str, ...]] = {}
            for mf in r.items(m, "Fasen", "FaseCyclus"):
                fc = r.text(mf, "FaseCyclus", f"module {mname}")
                members.append(fc)
                alt = tuple(r.text(a, "FaseCyclus", f"module {mname}: {fc}: alternative")
                            for a in r.items(mf, "Alternatieven", "Fase"))
                if alt:
                    alts[fc] = alt
            modules.append(TlcModule(mname, tuple(members), alts))
        for d in r.items(mill, "FasenModuleData", "FaseCyclusModuleData"):
            fc = r.text(d, "FaseCyclus", "ModuleMolen/FasenModuleData")
            alt_allowed[fc] = r.text(d, "AlternatiefToestaan", f"module data of {fc}", default="false").lower() == "true"
        rest_module = (mill.findtext("WachtModule") or "").strip() or None
    multi = root.find("MultiModuleMolens")
    if multi is not None and len(multi):
        unsupported["MultiModuleMolens"] = len(multi)

    prio_el = root.find("PrioData")
    prio = []
    hd = []
    for k, p in enumerate(r.items(prio_el, "PrioIngrepen", "PrioIngreep")):
        fc = r.text(p, "FaseCyclus", f"PrioData/PrioIngrepen/PrioIngreep[{k + 1}]")
        where = f"priority ingress of {fc}"
        settings = _settings(p, {"FaseCyclus", "Type", "Naam", "RijTijdOngehinderd"})
        for kind in ("Inmelding", "Uitmelding"):
            types = [r.text(m, "Type", f"{where}: {kind}", default="?")
                     for m in r.items(p.find("MeldingenData"), f"{kind}en", kind)]
            if types:
                settings[f"{kind}en"] = "+".join(types)
        prio.append(TlcPrioIngress(
            group=fc, vehicle=r.text(p, "Type", where, default="NG"), name=r.text(p, "Naam", where, default=""),
            travel_time=r.integer(p, "RijTijdOngehinderd", where), settings=settings,
        ))
    for k, h in enumerate(r.items(prio_el, "HDIngrepen", "HDIngreep")):
        fc = r.text(h, "FaseCyclus", f"PrioData/HDIngrepen/HDIngreep[{k + 1}]")
        hd.append(TlcHdIngress(
            group=fc, travel_time=r.integer(h, "RijTijdOngehinderd", f"emergency ingress of {fc}"),
            settings=_settings(h, {"FaseCyclus", "RijTijdOngehinderd"}),
        ))
    for wrapper, item in (("FileIngrepen", "FileIngreep"), ("VAOntruimenFasen", "VAOntruimenFase"),
                          ("RichtingGevoeligeAanvragen", "RichtingGevoeligeAanvraag"),
                          ("RichtingGevoeligVerlengen", "RichtingGevoeligVerleng")):
        n = len(r.items(root, wrapper, item))
        if n:
            unsupported[wrapper] = n
    return TlcController(
        source=source, name=name, intergreen=intergreen, signal_groups=tuple(groups),
        conflicts=tuple(conflicts), green_sets=tuple(sets), default_green_set=default_set,
        period_green_sets=period_sets, modules=tuple(modules), alternative_allowed=alt_allowed,
        rest_module=rest_module, prio=tuple(prio), hd=tuple(hd), unsupported=unsupported,
    )
