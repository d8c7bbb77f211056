"""KPIs of the road users who carry an app (Schwung), against the rest of their mode.

Who carries the app is decided by :func:`ivri.sumo.v2x.equipped_mask` from the seed and the
SUMO id, so the same trips are picked out of a baseline run and a treatment run with the same
seed. The ids are read and dropped here: only aggregates leave this module.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ivri.timefmt import parse_time_s

__all__ = ["equipped_trip_kpis"]


def equipped_trip_kpis(tripinfo: Path, vtypes: Iterable[str], share: float, seed: int,
                       kind: str) -> dict[str, Any]:
    """Mean time loss and stops of the equipped and the other trips of the given vehicle types.

    Only trips that arrived count (an unfinished trip has no final time loss).
    """
    from ivri.sumo.v2x import equipped_mask

    wanted = set(vtypes)
    ids: list[str] = []
    loss: list[float] = []
    stops: list[int] = []
    for _, el in ET.iterparse(str(tripinfo), events=("end",)):
        if el.tag == "tripinfo":
            if el.get("vType") in wanted and parse_time_s(el.get("arrival", "-1")) >= 0.0:
                ids.append(el.get("id", ""))
                loss.append(parse_time_s(el.get("timeLoss", "0")))
                stops.append(int(float(el.get("waitingCount", "0"))))
            el.clear()
    eq = equipped_mask(ids, share, seed, kind)
    loss_a, stops_a = np.asarray(loss), np.asarray(stops, dtype=np.float64)

    def agg(mask: np.ndarray) -> dict[str, Any]:
        n = int(mask.sum())
        return {
            "trips": n,
            "mean_time_loss_s": None if n == 0 else round(float(loss_a[mask].mean()), 2),
            "mean_stops": None if n == 0 else round(float(stops_a[mask].mean()), 3),
        }

    return {"equipped": agg(eq), "others": agg(~eq)}
