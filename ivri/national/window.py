"""KPIs of a counted window: trips that want to depart after the warm-up.

A run of the national sweep simulates ``warmup + span`` seconds and counts only the trips
whose *wanted* departure falls after the warm-up (``depart - departDelay``; for a vehicle still
waiting to enter at the end, ``end - departDelay``). Each counted trip contributes everything it
lost, up to the end of the run (unfinished trips are written by SUMO with their values so far).
This is the departure-window estimator: the trips that started in the empty network of the
warm-up are left out, and in a stationary run the trips cut at the end balance the ones that
carried their loss in from before the window. Per hour means per hour of ``span``.

Besides SUMO's ``timeLoss`` (time lost against each vehicle's *desired* speed, speed factor
included) it gives the loss against the *speed limit*, as Rijkswaterstaat counts
vehicle-loss hours against a reference speed: ``max(duration - routeLength / v_ref, 0) +
departDelay``, with ``v_ref`` the network's mean motor speed limit (length-weighted over
non-internal edges that admit passenger cars).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ivri.metrics.fuel import FUEL_DIESEL, FUEL_PETROL
from ivri.metrics.tripinfo import TripInfo
from ivri.metrics.vtypes import MOTOR_MODES

__all__ = ["reference_speed_mps", "window_metrics"]

_S_PER_H = 3600.0


def reference_speed_mps(net_file: Path) -> float:
    """Length-weighted mean speed limit of the network's edges that admit passenger cars."""
    from ivri.sumo.network import read_net

    net = read_net(net_file)
    total = weighted = 0.0
    for edge in net.getEdges(withInternal=False):
        if not edge.allows("passenger"):
            continue
        length = edge.getLength()
        total += length
        weighted += length * edge.getSpeed()
    return weighted / total if total > 0 else 50.0 / 3.6


def window_metrics(trips: TripInfo, vtype_modes: Mapping[str, str], vtype_fuels: Mapping[str, str],
                   warmup_s: float, end_s: float, v_ref_mps: float) -> dict[str, Any]:
    """Totals over the counted trips (see the module docstring); times in h, masses in kg."""
    v = trips.vehicles
    modes = np.array([vtype_modes.get(t, "car") for t in v.vtype_ids], dtype=object)
    fuels = np.array([vtype_fuels.get(t, "") for t in v.vtype_ids], dtype=object)
    mode = modes[v.vtype_index] if len(v) else np.array([], dtype=object)
    fuel = fuels[v.vtype_index] if len(v) else np.array([], dtype=object)
    wanted = np.where(v.departed, v.depart_s - v.depart_delay_s, end_s - v.depart_delay_s)
    counted = wanted >= warmup_s - 1e-9
    motor = counted & np.isin(mode, list(MOTOR_MODES))
    bike = counted & (mode == "bicycle")
    ev = counted & (mode == "emergency")
    ideal = v.route_length_m / max(v_ref_mps, 0.1)
    limit_loss = np.maximum(np.where(v.departed, v.duration_s - ideal, 0.0), 0.0) + v.depart_delay_s
    kg = v.fuel_mg / 1e6
    return {
        "window_s": end_s - warmup_s,
        "motor_trips": int(motor.sum()),
        "vehicle_loss_hours": float((v.time_loss_s[motor] + v.depart_delay_s[motor]).sum() / _S_PER_H),
        "time_loss_hours": float(v.time_loss_s[motor].sum() / _S_PER_H),
        "depart_delay_hours": float(v.depart_delay_s[motor].sum() / _S_PER_H),
        "limit_loss_hours": float(limit_loss[motor].sum() / _S_PER_H),
        "stops": int(v.waiting_count[motor & v.departed].sum()),
        "petrol_kg": float(kg[motor & (fuel == FUEL_PETROL)].sum()),
        "diesel_kg": float(kg[motor & (fuel == FUEL_DIESEL)].sum()),
        "co2_kg": float(v.co2_mg[motor].sum() / 1e6),
        "cyclist_loss_h": float((v.time_loss_s[bike] + v.depart_delay_s[bike]).sum() / _S_PER_H),
        "cyclist_trips": int(bike.sum()),
        "emergency_time_lost_s": float((v.time_loss_s[ev] + v.depart_delay_s[ev]).sum()),
        "emergency_trips": int(ev.sum()),
    }
