"""Check an imported controller's conflicts against the SUMO junction it is mapped onto.

Two signal groups whose SUMO links are foes (SUMO's right-of-way table of the junction says
their paths cross or merge) must be a conflict in the controller, unless the file marks the
pair as a green-green conflict (``GK``/``GKL``: run together, one gives way) or the engineer
confirms it in the mapping (``allow_conflicts``). Otherwise the import is refused: a
controller that lets two crossing streams go together is an error, not a warning. Conflicts
that the file declares between groups whose links SUMO considers harmless are reported (the
controller stays stricter than the geometry; that is allowed).

Finally the intersection goes through :func:`~ivri.sumo.network.link_maps_for_configs`, the
same check that ``ivri run --config`` makes: links in range and in one group only, and
groups allowed together only where the stream that gives way is a turn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ivri.errors import ConfigError
from ivri.sumo.network import link_foes, link_maps_for_configs, read_net

from .convert import Imported
from .mapping import TlcMap

__all__ = ["check_against_network"]


def check_against_network(imported: Imported, mapping: TlcMap, net: Any) -> list[str]:
    """Report lines for ``imported`` on ``net`` (a path or a read network); raises
    :class:`~ivri.errors.ConfigError` for SUMO foes that the file lets run together unconfirmed.
    """
    sumo_net = read_net(net) if isinstance(net, (str, Path)) else net
    x = imported.config
    ids = x.group_ids()
    for pair in mapping.allow_conflicts:
        for gid in pair:
            if gid not in ids:
                raise ConfigError(f"allow_conflicts names unknown signal group {gid!r}")
    foes = link_foes(sumo_net, mapping.tls_id)
    n_links = foes.shape[0]
    member = np.zeros((len(ids), n_links), dtype=np.int32)
    for gi, g in enumerate(x.signal_groups):
        for k in g.sumo_links:
            if not 0 <= k < n_links:
                raise ConfigError(f"mapping: signal group {g.id!r} names SUMO link {k}, but traffic light "
                                  f"{mapping.tls_id!r} has links 0..{n_links - 1}")
            member[gi, k] = 1
    group_foes = (member @ foes.astype(np.int32) @ member.T) > 0
    declared = {frozenset(c.between) for c in x.conflicts}
    confirmed = {frozenset(p) for p in mapping.allow_conflicts}
    lines: list[str] = []
    refused: list[str] = []
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            pair = frozenset((ids[a], ids[b]))
            foe = bool(group_foes[a, b])
            if pair in declared and not foe:
                lines.append(f"conflict {ids[a]}/{ids[b]}: SUMO's junction considers their links harmless "
                             "(no foes); the conflict is kept")
            elif foe and pair not in declared:
                if pair in imported.green_conflicts:
                    lines.append(f"{ids[a]}/{ids[b]}: SUMO foes, run together as the file's green-green "
                                 "conflict (GK); the stream that gives way shows 'g'")
                elif pair in confirmed:
                    lines.append(f"{ids[a]}/{ids[b]}: SUMO foes, run together as allow_conflicts confirms")
                else:
                    la = [k for k in x.signal_groups[a].sumo_links if member[b] @ foes[k].astype(np.int32) > 0]
                    refused.append(f"{ids[a]} and {ids[b]} (SUMO links {la[:3]} cross links of {ids[b]})")
    if refused:
        raise ConfigError(
            f"the controller lets SUMO foes be green together: {'; '.join(refused)}. Add the conflict "
            "in TLCGen, or confirm each pair under allow_conflicts in the mapping file"
        )
    link_maps_for_configs([x], sumo_net)
    return lines
