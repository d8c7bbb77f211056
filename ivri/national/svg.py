"""Plain SVG charts for the national report: intervals with a reference line, a tornado, bars.

Hand-written SVG (no plotting library): the charts sit inside the HTML page as text, scale with
the page and print sharply. Axis values are linear; a chart whose data span decades says so in
its caption rather than hiding it in a log axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["bars_svg", "intervals_svg", "tornado_svg"]

_W = 760
_LEFT = 270
_RIGHT = 30
_ROW = 26
_TOP = 34
_BOTTOM = 40


def _scale(lo: float, hi: float) -> tuple[float, float]:
    if hi <= lo:
        hi = lo + 1.0
    pad = 0.05 * (hi - lo)
    return lo - pad, hi + pad


def _x(v: float, lo: float, hi: float) -> float:
    return _LEFT + (v - lo) / (hi - lo) * (_W - _LEFT - _RIGHT)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    import math

    step = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(step)) if step > 0 else 1.0
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= step), default=step)
    start = math.ceil(lo / step) * step
    return [start + k * step for k in range(int((hi - start) / step) + 1)]


def _fmt(v: float) -> str:
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g} M"
    if a >= 1e3:
        return f"{v / 1e3:.3g} k"
    return f"{v:.3g}"


def _axis(lo: float, hi: float, height: float, unit: str) -> list[str]:
    out = []
    for t in _ticks(lo, hi):
        x = _x(t, lo, hi)
        out.append(f'<line x1="{x:.1f}" y1="{_TOP - 6}" x2="{x:.1f}" y2="{height - _BOTTOM + 4}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{height - _BOTTOM + 18}" font-size="11" text-anchor="middle">{_fmt(t)}</text>')
    out.append(f'<text x="{(_LEFT + _W - _RIGHT) / 2:.0f}" y="{height - 6}" font-size="12" '
               f'text-anchor="middle">{escape(unit)}</text>')
    return out


def _svg(height: float, title: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {height:.0f}" width="100%" '
            f'role="img" aria-label="{escape(title)}" font-family="sans-serif">'
            f'<text x="8" y="18" font-size="13" font-weight="bold">{escape(title)}</text>'
            + "".join(body) + "</svg>")


def intervals_svg(title: str, rows: Sequence[tuple[str, float, float, float]], unit: str,
                  reference: tuple[str, float] | None = None) -> str:
    """One row per item: a bar from low to high and a dot at the central value; an optional
    dashed reference line (e.g. the G40 figure)."""
    height = _TOP + _ROW * max(len(rows), 1) + _BOTTOM
    values = [v for _, c, lo, hi in rows for v in (c, lo, hi)] + [0.0]
    if reference is not None:
        values.append(reference[1])
    lo, hi = _scale(min(values), max(values))
    body = _axis(lo, hi, height, unit)
    x0 = _x(0.0, lo, hi)
    body.append(f'<line x1="{x0:.1f}" y1="{_TOP - 6}" x2="{x0:.1f}" y2="{height - _BOTTOM}" stroke="#000"/>')
    for k, (name, c, a, b) in enumerate(rows):
        y = _TOP + _ROW * k + _ROW / 2
        body.append(f'<text x="{_LEFT - 8}" y="{y + 4:.1f}" font-size="12" text-anchor="end">{escape(name)}</text>')
        body.append(f'<line x1="{_x(a, lo, hi):.1f}" y1="{y:.1f}" x2="{_x(b, lo, hi):.1f}" y2="{y:.1f}" '
                    'stroke="#3b78c2" stroke-width="7" stroke-linecap="round"/>')
        body.append(f'<circle cx="{_x(c, lo, hi):.1f}" cy="{y:.1f}" r="4.5" fill="#111"/>')
    if reference is not None:
        body += _reference_line(reference, lo, hi, height)
    return _svg(height, title, body)


def _reference_line(reference: tuple[str, float], lo: float, hi: float, height: int) -> list[str]:
    """A dashed vertical line at a reference value (the G40 figure), labelled at its head.

    The label stands above the first row, with a white halo, so that no bar hides it."""
    xr = _x(reference[1], lo, hi)
    return [f'<line x1="{xr:.1f}" y1="{_TOP - 6}" x2="{xr:.1f}" y2="{height - _BOTTOM}" '
            'stroke="#c0392b" stroke-dasharray="5,4" stroke-width="2"/>',
            f'<text x="{xr + 4:.1f}" y="{_TOP - 4}" font-size="11" fill="#c0392b" stroke="#fff" '
            f'stroke-width="3" paint-order="stroke">{escape(reference[0])}</text>']


def tornado_svg(title: str, rows: Sequence[tuple[str, float, float]], central: float, unit: str,
                reference: tuple[str, float] | None = None) -> str:
    """One row per parameter: from the result at its low end to the result at its high end."""
    height = _TOP + _ROW * max(len(rows), 1) + _BOTTOM
    values = [central] + [v for _, a, b in rows for v in (a, b)]
    if reference is not None:
        values.append(reference[1])
    lo, hi = _scale(min(values), max(values))
    body = _axis(lo, hi, height, unit)
    xc = _x(central, lo, hi)
    for k, (name, a, b) in enumerate(rows):
        y = _TOP + _ROW * k + 4
        body.append(f'<text x="{_LEFT - 8}" y="{y + 13:.1f}" font-size="11" text-anchor="end">{escape(name)}</text>')
        for v, colour in ((a, "#3b78c2"), (b, "#e08a2c")):
            xv = _x(v, lo, hi)
            body.append(f'<rect x="{min(xv, xc):.1f}" y="{y:.1f}" width="{abs(xv - xc):.1f}" height="{_ROW - 8}" '
                        f'fill="{colour}" fill-opacity="0.85"/>')
    body.append(f'<line x1="{xc:.1f}" y1="{_TOP - 6}" x2="{xc:.1f}" y2="{height - _BOTTOM}" stroke="#000"/>')
    if reference is not None:
        body += _reference_line(reference, lo, hi, height)
    body.append(f'<text x="{_W - _RIGHT}" y="18" font-size="11" text-anchor="end">'
                '<tspan fill="#3b78c2">■ parameter low</tspan> <tspan fill="#e08a2c">■ parameter high</tspan></text>')
    return _svg(height, title, body)


def bars_svg(title: str, rows: Sequence[tuple[str, float]], unit: str) -> str:
    """Horizontal bars from zero."""
    height = _TOP + _ROW * max(len(rows), 1) + _BOTTOM
    values = [v for _, v in rows] + [0.0]
    lo, hi = _scale(min(values), max(values))
    body = _axis(lo, hi, height, unit)
    x0 = _x(0.0, lo, hi)
    for k, (name, v) in enumerate(rows):
        y = _TOP + _ROW * k + 4
        xv = _x(v, lo, hi)
        body.append(f'<text x="{_LEFT - 8}" y="{y + 13:.1f}" font-size="11" text-anchor="end">{escape(name)}</text>')
        body.append(f'<rect x="{min(x0, xv):.1f}" y="{y:.1f}" width="{abs(xv - x0):.1f}" height="{_ROW - 8}" '
                    f'fill="{"#3b78c2" if v >= 0 else "#c0392b"}"/>')
    body.append(f'<line x1="{x0:.1f}" y1="{_TOP - 6}" x2="{x0:.1f}" y2="{height - _BOTTOM}" stroke="#000"/>')
    return _svg(height, title, body)
