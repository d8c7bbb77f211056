"""Read the parts of a SUMO ``.sumocfg`` that the bridge needs.

SUMO configuration files hold one element per option, usually grouped in sections
(``<input><net-file value="..."/></input>``); SUMO itself ignores the section level, and so
does this reader. Options may use their long name or a synonym (``net-file`` / ``net`` /
``n``), file lists may be separated by commas or spaces, and relative paths are relative to
the folder of the ``.sumocfg`` (SUMO's own rule). Times may be seconds or ``h:m:s``.

Only what the bridge needs is interpreted (:class:`SumoConfig`); every other option is kept
as text in :attr:`SumoConfig.options`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ivri.errors import NetworkError

__all__ = ["SumoConfig", "parse_time_s", "read_sumocfg", "split_file_list"]

# SUMO's long option name and the synonyms it accepts in a configuration file.
_SYNONYMS = {
    "net-file": ("net-file", "net", "n"),
    "route-files": ("route-files", "routes", "r"),
    "additional-files": ("additional-files", "additional", "a"),
    "begin": ("begin", "b"),
    "end": ("end", "e"),
    "step-length": ("step-length",),
    "seed": ("seed",),
}
_CANONICAL = {alias: name for name, aliases in _SYNONYMS.items() for alias in aliases}


@dataclass(frozen=True)
class SumoConfig:
    """What a ``.sumocfg`` says about the run, with every path absolute."""

    path: Path
    net_file: Path
    route_files: tuple[Path, ...] = ()
    additional_files: tuple[Path, ...] = ()
    begin_s: float = 0.0
    end_s: float | None = None          # None: SUMO runs until all traffic has left
    step_length_s: float = 1.0
    seed: int | None = None
    options: dict[str, str] = field(default_factory=dict, repr=False)  # every option, as text


def split_file_list(value: str) -> list[str]:
    """SUMO file lists: separated by commas and / or white space."""
    return [p for p in re.split(r"[,\s]+", value.strip()) if p]


def parse_time_s(value: str, *, what: str = "time") -> float:
    """A SUMO time value in seconds: ``"3600"``, ``"3600.5"``, ``"1:00:00"`` or ``"1:0:00:00"`` (d:h:m:s)."""
    text = value.strip()
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) > 4:
                raise ValueError(text)
            seconds = 0.0
            for p, scale in zip(reversed(parts), (1.0, 60.0, 3600.0, 86400.0)):
                seconds += p * scale
            return seconds
        return float(text)
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a number of seconds") from None


def read_sumocfg(path: str | Path) -> SumoConfig:
    """Read a ``.sumocfg``; raise :class:`~ivri.errors.NetworkError` naming the file and the problem.

    Errors: the file is missing or not XML, it names no network, or a file it references
    (network, routes, additional files) does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise NetworkError(f"SUMO configuration {path} does not exist")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise NetworkError(f"SUMO configuration {path} is not valid XML: {exc}") from None
    except OSError as exc:
        raise NetworkError(f"SUMO configuration {path} cannot be read: {exc.strerror or exc}") from None
    if root.tag not in ("configuration", "sumoConfiguration"):
        raise NetworkError(
            f"SUMO configuration {path}: root element is <{root.tag}>, expected <configuration>"
        )

    options: dict[str, str] = {}
    for el in root.iter():
        if el is root or "value" not in el.attrib:
            continue
        options[_CANONICAL.get(el.tag, el.tag)] = el.attrib["value"]

    folder = path.resolve().parent

    def resolve(name: str) -> Path:
        p = Path(name)
        return p if p.is_absolute() else (folder / p)

    def existing(names: list[str], option: str) -> tuple[Path, ...]:
        out = []
        for name in names:
            p = resolve(name)
            if not p.is_file():
                raise NetworkError(f"SUMO configuration {path}: {option} {name!r} does not exist ({p})")
            out.append(p)
        return tuple(out)

    net_names = split_file_list(options.get("net-file", ""))
    if not net_names:
        raise NetworkError(f"SUMO configuration {path} names no network (net-file)")
    if len(net_names) > 1:
        raise NetworkError(f"SUMO configuration {path} names more than one network: {net_names}")
    (net_file,) = existing(net_names, "net-file")

    def time_option(name: str, default: float | None) -> float | None:
        if name not in options:
            return default
        try:
            return parse_time_s(options[name], what=name)
        except ValueError as exc:
            raise NetworkError(f"SUMO configuration {path}: {exc}") from None

    begin_s = time_option("begin", 0.0)
    end_s = time_option("end", None)
    if end_s is not None and end_s < 0:
        end_s = None  # SUMO's "-1": no end
    step_s = time_option("step-length", 1.0)
    if step_s is None or step_s <= 0:
        raise NetworkError(f"SUMO configuration {path}: step-length must be positive, got {step_s}")
    seed = None
    if "seed" in options:
        try:
            seed = int(options["seed"])
        except ValueError:
            raise NetworkError(f"SUMO configuration {path}: seed {options['seed']!r} is not an integer") from None

    return SumoConfig(
        path=path.resolve(),
        net_file=net_file,
        route_files=existing(split_file_list(options.get("route-files", "")), "route file"),
        additional_files=existing(split_file_list(options.get("additional-files", "")), "additional file"),
        begin_s=float(begin_s or 0.0),
        end_s=end_s,
        step_length_s=float(step_s),
        seed=seed,
        options=options,
    )
