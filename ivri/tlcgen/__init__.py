"""Import Dutch controllers made with TLCGen (``.tlc`` files) into ivri's intersection model.

* :func:`read_tlc` reads the file (:mod:`.reader`);
* :func:`convert` makes an :class:`~ivri.config.IntersectionConfig` of it, with a warning line
  for everything ivri does not represent (:mod:`.convert`);
* :func:`propose_map` proposes where its signal groups and detectors are in a SUMO network,
  :func:`load_tlc_map` reads the reviewed mapping (:mod:`.mapping`);
* :func:`check_against_network` refuses conflicts missing against SUMO's foes (:mod:`.check`).

``docs/tlcgen.md`` has the field-by-field mapping.
"""

from .check import check_against_network
from .convert import Imported, convert
from .mapping import TlcMap, group_id, load_tlc_map, propose_map, write_map
from .reader import TlcController, read_tlc

__all__ = [
    "Imported",
    "TlcController",
    "TlcMap",
    "check_against_network",
    "convert",
    "group_id",
    "load_tlc_map",
    "propose_map",
    "read_tlc",
    "write_map",
]
