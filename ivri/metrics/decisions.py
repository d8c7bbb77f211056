"""The decision log: every priority request, grant, refusal, time-out and recovery, with its reason.

One JSON object per line (``decisions.jsonl`` in a run's folder), fit for a municipal
algorithm register::

    {"t_s": 812.5, "intersection": "J3", "signal_group": "02", "priority_class": "emergency",
     "event": "grant", "reason": "conflicting greens ended early so that it arrives at green",
     "eta_s": 11.2}

It holds no vehicle, station or app identity: a record says what was decided, where, when,
for which class of road user and why. :func:`summarise_decisions` turns one or more logs
into counts per class and event, and the reasons of refusals.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import IO, Any, Self

__all__ = ["DECISIONS_FILENAME", "DecisionLog", "read_decisions", "summarise_decisions"]

DECISIONS_FILENAME = "decisions.jsonl"
#: ``benefit_ps`` / ``cost_ps``: the person-seconds a weighed grant or refusal saves and costs.
_FIELDS = ("t_s", "intersection", "signal_group", "priority_class", "event", "reason", "eta_s",
           "benefit_ps", "cost_ps")


class DecisionLog:
    """Write decisions as JSON lines (``path``), or only count them (``path=None``).

    Use as a context manager or call :meth:`close`. ``counts`` holds (class, event) -> n.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)
        self._fh: IO[str] | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("w", encoding="utf-8")
        self.counts: Counter[tuple[str, str]] = Counter()

    def record(self, **fields: Any) -> None:
        """Record one decision; only the documented fields are accepted (no identities)."""
        extra = set(fields) - set(_FIELDS)
        if extra:
            raise ValueError(f"decision log: unexpected field(s) {sorted(extra)}")
        self.counts[(str(fields.get("priority_class")), str(fields.get("event")))] += 1
        if self._fh is not None:
            self._fh.write(json.dumps({k: fields.get(k) for k in _FIELDS}) + "\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def summary(self) -> dict[str, dict[str, int]]:
        """``{class: {event: n}}`` of what was recorded."""
        out: dict[str, dict[str, int]] = {}
        for (cls, event), n in sorted(self.counts.items()):
            out.setdefault(cls, {})[event] = n
        return out


def read_decisions(path: str | Path) -> list[dict[str, Any]]:
    """All records of one log. Raises ``ValueError`` naming the line of a broken record."""
    path = Path(path)
    out = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}, line {n}: not JSON ({exc.msg})") from None
            if not isinstance(rec, dict) or "event" not in rec:
                raise ValueError(f"{path}, line {n}: not a decision record")
            out.append(rec)
    return out


def summarise_decisions(paths: list[Path]) -> dict[str, Any]:
    """Counts per (class, event), refusal reasons, and the grant rate per class, over ``paths``."""
    events: Counter[tuple[str, str]] = Counter()
    reasons: Counter[tuple[str, str, str]] = Counter()
    for p in paths:
        for rec in read_decisions(p):
            cls, event = str(rec.get("priority_class")), str(rec.get("event"))
            events[(cls, event)] += 1
            if event in ("refusal", "time-out", "deferred"):
                reasons[(cls, event, str(rec.get("reason")))] += 1
    classes = sorted({c for c, _ in events})
    per_class = {}
    for c in classes:
        req = events[(c, "request")]
        per_class[c] = {
            "requests": req,
            "grants": events[(c, "grant")],
            "refusals": events[(c, "refusal")],
            "time-outs": events[(c, "time-out")],
            "deferred": events[(c, "deferred")],
            "releases": events[(c, "release")],
            "recoveries": events[(c, "recovery")],
            "grant_rate": None if not req else round(events[(c, "grant")] / req, 3),
        }
    return {
        "files": [str(p) for p in paths],
        "by_class": per_class,
        "reasons": [
            {"priority_class": c, "event": e, "reason": r, "count": n}
            for (c, e, r), n in sorted(reasons.items(), key=lambda kv: -kv[1])
        ],
    }
