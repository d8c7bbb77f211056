"""Watch a run in sumo-gui: the view on the controlled intersections, and the decisions made visible.

With ``ivri run ... --gui`` SUMO runs as ``sumo-gui`` over TraCI. :func:`gui_options` gives the
extra SUMO options (the window size, the delay per step, a view-settings file that shows the
labels below) and :class:`GuiView` decorates the running GUI:

* at the start the view is set to the bounding box of the controlled intersections' stop
  lines (``gui.setBoundary``);
* every equipped road user gets the colour of its class once, when it becomes equipped:
  emergency vehicles blue (drawn as vans: sumo-gui draws its ambulance shape white), buses orange, trucks brown, cyclists with the app cyan, slow
  walkers with the Crosswalk app magenta (other road users keep their type's colour);
* a vehicle whose priority request the arbiter acts on is circled (``vehicle.highlight``),
  and the circle is removed when the request ends;
* each intersection has a text label (a point of interest whose parameter ``ivri`` the view
  settings show) with its current highest priority request and whether it is granted; the
  label is written only when it changes.

Everything per tick is array work over the arbiter's request rows; TraCI is called only for
changes (a newly equipped road user, a grant that starts or ends, a label that changes), so
the GUI stays as fast as SUMO draws. ``GuiView.screenshot`` saves the view through TraCI
(``gui.screenshot``; sumo-gui writes the file when it next draws, i.e. after the next step).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from ivri.controllers.priority import PriorityClass, request_tokens
from ivri.controllers.v2x import Role

__all__ = ["GUI_SETTINGS_FILENAME", "ROLE_COLOURS", "GuiView", "gui_options"]

GUI_SETTINGS_FILENAME = "ivri_gui_settings.xml"
VIEW = "View #0"
#: RGBA colour of each kind of equipped road user.
ROLE_COLOURS: dict[int, tuple[int, int, int, int]] = {
    int(Role.EMERGENCY): (30, 90, 255, 255),
    int(Role.BUS): (255, 140, 0, 255),
    int(Role.TRUCK): (140, 80, 40, 255),
    int(Role.CYCLIST): (0, 200, 210, 255),
    int(Role.PEDESTRIAN): (230, 0, 200, 255),
    int(Role.CAR): (120, 200, 80, 255),
}
HIGHLIGHT = (255, 0, 255, 255)
#: Metres around the stop lines of the controlled intersections that the view shows.
VIEW_MARGIN_M = 45.0
_TEXT_PARAM = "ivri"
_LABEL_PREFIX = "ivri_label_"

_SETTINGS = """<viewsettings>
    <scheme name="ivri">
        <vehicles vehicle_exaggeration="1.6"/>
        <persons person_exaggeration="2.0"/>
        <pois poiTextParam="{param}" poiText_show="1" poiText_size="70" poiText_color="255,255,255"
              poiText_bgColor="0,0,0,190" poiText_constantSize="1"/>
    </scheme>
    <delay value="{delay:g}"/>
</viewsettings>
"""


def gui_options(run_dir: str | Path, delay_ms: float = 0.0, window: tuple[int, int] = (1200, 900)) -> list[str]:
    """sumo-gui options of a watched run: the view settings (written into ``run_dir``), the
    delay per step in milliseconds (``--gui-delay``) and the window size."""
    if not delay_ms >= 0.0:
        raise ValueError(f"the GUI delay must be >= 0 ms, got {delay_ms}")
    path = Path(run_dir) / GUI_SETTINGS_FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_SETTINGS.format(param=_TEXT_PARAM, delay=delay_ms), encoding="utf-8")
    return ["--gui-settings-file", str(path.resolve()), "--delay", f"{delay_ms:g}",
            "--window-size", f"{window[0]},{window[1]}"]


class GuiView:
    """Decorate a running sumo-gui (see the module docstring).

    ``conn`` is the TraCI connection, ``net`` the compiled intersections, ``tls_ids`` the
    traffic light of each intersection (in ``net``'s order), ``v2x`` the run's
    :class:`~ivri.sumo.v2x.V2XEmulator` (None: no equipped road users to show).
    ``screenshot_path``: save one screenshot when an emergency vehicle with a granted request
    is within ``screenshot_within_m`` of its stop line, or else near the end of the run.
    """

    def __init__(self, conn: Any, net: Any, tls_ids: list[str], v2x: Any = None, *,
                 screenshot_path: str | Path | None = None, screenshot_within_m: float = 40.0) -> None:
        self.conn = conn
        self.net = net
        self.v2x = v2x
        self.screenshot_path = None if screenshot_path is None else Path(screenshot_path)
        self.screenshot_within_m = float(screenshot_within_m)
        self.screenshot_taken_at_s: float | None = None
        self._highlighted: dict[int, str] = {}
        self._codes = np.full(len(tls_ids), -1, dtype=np.int64)  # label shown: see _update_labels
        self._label_ids = [f"{_LABEL_PREFIX}{x}" for x in net.intersection_ids]
        self.label_writes = 0
        if v2x is not None:
            v2x.track_equipped = True
        centres, lo, hi = [], np.full(2, np.inf), np.full(2, -np.inf)
        self._boxes: list[tuple[np.ndarray, np.ndarray]] = []  # stop lines' bounding box per intersection
        for tls in tls_ids:
            ends = np.array([conn.lane.getShape(lane)[-1] for lane in sorted(set(conn.trafficlight.getControlledLanes(tls)))],
                            dtype=np.float64).reshape(-1, 2)
            centres.append(ends.mean(axis=0) if len(ends) else np.zeros(2))
            if len(ends):
                lo, hi = np.minimum(lo, ends.min(axis=0)), np.maximum(hi, ends.max(axis=0))
            self._boxes.append((ends.min(axis=0), ends.max(axis=0)) if len(ends) else (np.zeros(2), np.zeros(2)))
        if np.isfinite(lo).all():
            conn.gui.setBoundary(VIEW, *(lo - VIEW_MARGIN_M), *(hi + VIEW_MARGIN_M))
        for poi, (x, y) in zip(self._label_ids, centres, strict=True):
            conn.poi.add(poi, float(x), float(y), (0, 0, 0, 0), poiType="ivri", layer=250.0)

    # --- per tick ---------------------------------------------------------------------------

    def update(self, t_s: float, end_s: float, dt_s: float, tracked: Any = None) -> None:
        """Show this tick's changes: colours of newly equipped road users, highlights of
        granted vehicles (``tracked``: the controller's
        :meth:`~ivri.controllers.base.Controller.tracked_requests`), labels; take the screenshot
        when its moment has come."""
        if self.v2x is not None and self.v2x.equipped_new:
            self._colour(self.v2x.equipped_new)
            self.v2x.equipped_new = []
        ev_at = self._decisions(tracked) if tracked is not None else -1
        due = ev_at >= 0 or t_s >= end_s - 2.0 * dt_s - 1e-9  # the last chance: drawn after the next step
        if self.screenshot_path is not None and self.screenshot_taken_at_s is None and due:
            if ev_at >= 0:  # the picture of the grant: its intersection fills the view
                lo, hi = self._boxes[ev_at]
                self.conn.gui.setBoundary(VIEW, *(lo - VIEW_MARGIN_M), *(hi + VIEW_MARGIN_M))
            self.screenshot(self.screenshot_path)
            self.screenshot_taken_at_s = t_s

    def _colour(self, new: list[tuple[str, int, bool]]) -> None:
        for sumo_id, role, person in new:
            colour = ROLE_COLOURS.get(int(role))
            if colour is None:
                continue
            with contextlib.suppress(Exception):  # it may have left in the same step
                (self.conn.person if person else self.conn.vehicle).setColor(sumo_id, colour)
                if role == Role.EMERGENCY:
                    # sumo-gui draws its ambulance shape white whatever the colour: a van shows it.
                    self.conn.vehicle.setShapeClass(sumo_id, "passenger/van")

    def _decisions(self, tracked: Any) -> int:
        """Highlights and labels from the arbiter's request rows. Returns the intersection
        where an emergency vehicle with a granted request is within the screenshot distance
        of its stop line (-1: none)."""
        from ivri.controllers.arbiter import ACTING

        acting = np.isin(tracked.status, np.asarray(ACTING, dtype=np.int8)) & (tracked.keys >= 0)
        tokens = set(request_tokens(tracked.keys[acting]).tolist())
        for tok in tokens - self._highlighted.keys():
            vid = self.v2x.vehicle_id(tok) if self.v2x is not None else None
            if vid is not None:
                with contextlib.suppress(Exception):
                    self.conn.vehicle.highlight(vid, HIGHLIGHT, size=7.0)
                    self._highlighted[tok] = vid
        for tok in set(self._highlighted) - tokens:
            vid = self._highlighted.pop(tok)
            with contextlib.suppress(Exception):  # gone with its vehicle
                self.conn.polygon.remove(f"{vid}_hl0")
        self._update_labels(tracked, acting)
        if self.v2x is None or not tokens:
            return -1
        ev = acting & (tracked.cls == PriorityClass.EMERGENCY)
        if not ev.any():
            return -1
        obs = self.v2x.obs
        near = np.isin(obs.token, request_tokens(tracked.keys[ev])) & (obs.distance_m <= self.screenshot_within_m)
        return int(obs.intersection[near][0]) if near.any() else -1

    def _update_labels(self, tracked: Any, acting: np.ndarray) -> None:
        # Per intersection the top request (highest class, granted before requested) as one
        # code; only intersections whose code changed get a new label.
        code = np.full(len(self._codes), -1, dtype=np.int64)
        shown = np.nonzero((tracked.group >= 0) & (tracked.cls != PriorityClass.COMPENSATION))[0]
        if len(shown):
            score = (tracked.cls[shown].astype(np.int64) * 2 + acting[shown]) * 1024 + tracked.group[shown]
            inter = tracked.intersection[shown]
            order = np.lexsort((score, inter))
            last = np.ones(len(order), dtype=np.bool_)
            last[:-1] = inter[order][1:] != inter[order][:-1]
            top = order[last]
            code[inter[top]] = score[top]
        for i in np.nonzero(code != self._codes)[0].tolist():
            text = ""
            if code[i] >= 0:
                group, rest = int(code[i] % 1024), int(code[i] // 1024)
                cls = PriorityClass(rest // 2).name.lower().replace("_", " ")
                text = f"{cls} {self.net.group_ids[i][group]}: {'granted' if rest % 2 else 'requested'}"
            self.conn.poi.setParameter(self._label_ids[i], _TEXT_PARAM, text)
            self.label_writes += 1
        self._codes = code

    def screenshot(self, path: str | Path) -> None:
        """Ask sumo-gui for a PNG of the view; it is written when the GUI next draws (after the
        next simulation step)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn.gui.screenshot(VIEW, str(path.resolve()))
