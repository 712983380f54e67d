"""Server-rendered SVG charts of the 12-week trends: the geometry is worked out here and drawn by
frontend/templates/oversight/_chart.html, with no script and no inline style (the CSP forbids both).

Accessible by construction: each chart is one image (role="img") named by its <title> and described
in words by its <desc> (what it shows, its highest week, the current week), and the page follows it with
a table of the same figures. Series differ by line pattern and marker shape as well as colour (classes
in frontend/static/tac/oversight.css, each colour at least 3:1 against white, WCAG 1.4.11), and the legend
shows the pattern and the shape."""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 330
LEFT, RIGHT, TOP, BOTTOM = 52, 28, 16, 250  # the plotting area
CHAR = 7.5  # roughly how wide a character of the charts' 13-unit text is, to space the legend
LEGEND_Y = 305


@dataclass(frozen=True)
class Series:
    name: str
    key: str  # the figure in each week's dict
    style: int  # oversight.css .tac-chart__series--N: 1-3 a line pattern, marker and colour; 4 the bars


def _nice_top(highest: int) -> tuple[int, int]:
    """(top of the y axis, step between gridlines) for at most about five gridlines."""
    if highest <= 5:
        return 5, 1
    rough = highest / 5
    magnitude = 10 ** math.floor(math.log10(rough))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= rough)
    return step * math.ceil(highest / step), step


def _marker(style: int, x: float, y: float) -> str:
    """A path for the marker of series `style` at (x, y): circle, square or triangle."""
    if style == 1:
        return f"M{x - 4.5:.1f},{y:.1f}a4.5,4.5 0 1,0 9,0a4.5,4.5 0 1,0 -9,0z"
    if style == 2:
        return f"M{x - 4:.1f},{y - 4:.1f}h8v8h-8z"
    return f"M{x:.1f},{y - 5.5:.1f}l5.5,9.5h-11z"


def _say(weeks: list[dict], series: list[Series]) -> str:
    parts = []
    for s in series:
        values = [w[s.key] for w in weeks]
        top = max(values)
        if top == 0:
            parts.append(f"{s.name}: none in any week.")
            continue
        best = [w for w in weeks if w[s.key] == top][0]
        parts.append(f"{s.name}: highest {top} in the week of {best['start']:%-d %B}; {values[-1]} this week.")
    return " ".join(parts)


def line_chart(*, slug: str, title: str, weeks: list[dict], series: list[Series]) -> dict:
    """What _chart.html draws: one line per series over the weeks, with a marker at each week."""
    highest = max((w[s.key] for w in weeks for s in series), default=0)
    top, step = _nice_top(highest)
    span_x = (WIDTH - LEFT - RIGHT) / max(len(weeks) - 1, 1)

    def y_of(value: int) -> float:
        return BOTTOM - (BOTTOM - TOP) * value / top

    xs = [LEFT + i * span_x for i in range(len(weeks))]
    lines = []
    for s in series:
        points = [(x, y_of(w[s.key])) for x, w in zip(xs, weeks, strict=True)]
        lines.append({"style": s.style, "name": s.name,
                      "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in points),
                      "markers": [_marker(s.style, x, y) for x, y in points]})
    legend, x = [], float(LEFT)
    for s in series:  # each key: a sample of the line and marker, then the name, then a gap
        legend.append({"style": s.style, "name": s.name, "x": f"{x + 36:.1f}", "line": f"M{x:.1f},{LEGEND_Y - 4}h28",
                       "marker": _marker(s.style, x + 14, LEGEND_Y - 4)})
        x += 36 + len(s.name) * CHAR + 24
    return {
        "slug": slug, "title": title,
        "desc": f"Line chart over the {len(weeks)} weeks from {weeks[0]['start']:%-d %B %Y}. {_say(weeks, series)} "
                "The table after the chart gives every week's figures.",
        "width": WIDTH, "height": HEIGHT,
        "grid": [{"y": f"{y_of(v):.1f}", "label": v} for v in range(0, top + 1, step)],
        "x_labels": [{"x": f"{x:.1f}", "label": f"{w['start']:%-d %b}"} for x, w in zip(xs, weeks, strict=True)],
        "left": LEFT, "right": WIDTH - RIGHT, "bottom": BOTTOM, "label_y": BOTTOM + 22, "legend_y": LEGEND_Y,
        "lines": lines, "legend": legend, "bars": [],
    }


def bar_chart(*, slug: str, title: str, weeks: list[dict], series: Series) -> dict:
    """One bar per week, its value written above it (one series: colour is not needed to tell it apart)."""
    highest = max((w[series.key] for w in weeks), default=0)
    top, step = _nice_top(highest)
    slot = (WIDTH - LEFT - RIGHT) / len(weeks)
    bars = []
    for i, w in enumerate(weeks):
        value = w[series.key]
        height = (BOTTOM - TOP) * value / top
        x = LEFT + i * slot + slot * 0.2
        bars.append({"x": f"{x:.1f}", "y": f"{BOTTOM - height:.1f}", "width": f"{slot * 0.6:.1f}",
                     "height": f"{height:.1f}", "value": value, "label_x": f"{x + slot * 0.3:.1f}",
                     "label_y": f"{BOTTOM - height - 6:.1f}"})
    return {
        "slug": slug, "title": title,
        "desc": f"Bar chart over the {len(weeks)} weeks from {weeks[0]['start']:%-d %B %Y}. {_say(weeks, [series])} "
                "The table after the chart gives every week's figures.",
        "width": WIDTH, "height": HEIGHT,
        "grid": [{"y": f"{BOTTOM - (BOTTOM - TOP) * v / top:.1f}", "label": v} for v in range(0, top + 1, step)],
        "x_labels": [{"x": f"{LEFT + i * slot + slot / 2:.1f}", "label": f"{w['start']:%-d %b}"}
                     for i, w in enumerate(weeks)],
        "left": LEFT, "right": WIDTH - RIGHT, "bottom": BOTTOM, "label_y": BOTTOM + 22, "legend_y": LEGEND_Y,
        "lines": [], "legend": [], "bars": bars, "bar_style": series.style,
    }
