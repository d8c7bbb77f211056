"""One SUMO time parser (built on sumolib's): configs, SUMO's outputs and input series read a
time the same way."""

from __future__ import annotations

from pathlib import Path

import pytest
from sumolib.miscutils import parseTime

from controllers.rain import RainSeries
from ivri.errors import ConfigError, NetworkError
from ivri.metrics.app_users import equipped_trip_kpis
from ivri.metrics.health import read_backlog
from ivri.metrics.tripinfo import read_tripinfo
from ivri.sumo.sumocfg import read_sumocfg
from ivri.timefmt import parse_time_s

# (text, seconds) as SUMO's string2time reads them; None: SUMO rejects the value.
CASES = [
    ("90", 90.0),
    ("3600.5", 3600.5),
    (" 90 ", 90.0),
    ("0:01:30", 90.0),
    ("1:00:00", 3600.0),
    ("01:00:04", 3604.0),
    ("1:0:00:00", 86400.0),
    ("-00:00:01", -1.0),
    ("-1:00:00", -3600.0),
    ("00:01:20.50", 80.5),
    ("01:30", None),  # two fields: 1 min 30 s or 1 h 30 min? SUMO refuses to guess
    ("1:2:3:4:5", None),
    ("1:xx:00", None),
    ("x", None),
    ("nan", None),
    ("inf", None),
    ("1:-5:00", None),  # a sign inside a field (sumolib would read it)
    ("1::00", None),
    ("triggered", None),  # SUMO's special depart words are not seconds (sumolib returns None)
]


@pytest.mark.parametrize(("text", "want"), CASES)
def test_parse_time_s(text: str, want: float | None) -> None:
    if want is None:
        with pytest.raises(ValueError, match="begin") as exc:
            parse_time_s(text, what="begin")
        assert repr(text) in str(exc.value)
    else:
        assert parse_time_s(text) == want


@pytest.mark.parametrize(("text", "want"), [c for c in CASES if c[1] is not None])
def test_agrees_with_sumolib(text: str, want: float) -> None:
    """What the project reads is what sumolib reads; a negative h:m:s is sumolib's reading
    of the unsigned value, negated (sumolib itself reads "-1:00:00" as +1 h)."""
    value = text.strip()
    if value.startswith("-") and ":" in value:
        assert parse_time_s(text) == -parseTime(value[1:]) == want
    else:
        assert parse_time_s(text) == parseTime(value) == want


def sumocfg_begin(tmp_path: Path, text: str) -> float | None:
    (tmp_path / "n.net.xml").write_text("<net/>")
    cfg = tmp_path / "s.sumocfg"
    cfg.write_text(f'<configuration><input><net-file value="n.net.xml"/></input>'
                   f'<time><begin value="{text}"/></time></configuration>')
    return read_sumocfg(cfg).begin_s


def rain_time(tmp_path: Path, text: str) -> float:
    p = tmp_path / "rain.csv"
    p.write_text(f"time,intensity\n{text},1.5\n")
    return float(RainSeries.from_csv(p).t_s[0])


def tripinfo_duration(tmp_path: Path, text: str) -> float:
    p = tmp_path / "tripinfo.xml"
    p.write_text(f'<tripinfos><tripinfo id="v" depart="0" departDelay="0" arrival="1" duration="{text}" '
                 f'waitingTime="0" timeLoss="0" vType="DEFAULT_VEHTYPE"/></tripinfos>')
    return float(read_tripinfo(p).vehicles.duration_s[0])


def summary_time(tmp_path: Path, text: str) -> float:
    p = tmp_path / "summary.xml"
    p.write_text(f'<summary><step time="{text}" waiting="0"/></summary>')
    return float(read_backlog(p)[0][0])


def app_users_time_loss(tmp_path: Path, text: str) -> float:
    p = tmp_path / "tripinfo.xml"
    p.write_text(f'<tripinfos><tripinfo id="v" arrival="1" timeLoss="{text}" waitingCount="0" '
                 f'vType="bike"/></tripinfos>')
    kpis = equipped_trip_kpis(p, ["bike"], 1.0, 42, "cyclist")
    return float(kpis["equipped"]["mean_time_loss_s"])


@pytest.mark.parametrize(("text", "want"), [c for c in CASES if c[0].strip() == c[0]])
def test_every_reader_agrees(tmp_path: Path, text: str, want: float | None) -> None:
    """The sumocfg reader, the rain series and the tripinfo reader give the same seconds, and
    all refuse what SUMO refuses (each with its own error type, naming the problem)."""
    readers = [(sumocfg_begin, NetworkError), (rain_time, ConfigError), (tripinfo_duration, ValueError),
               (summary_time, ValueError), (app_users_time_loss, ValueError)]
    for read, error in readers:
        if want is None:
            with pytest.raises(error):
                read(tmp_path, text)
        else:
            assert read(tmp_path, text) == want, read.__name__
