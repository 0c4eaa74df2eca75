"""The dashboard's charts: SVG drawn server-side by pygal from the stats services' answers.

Pure: figures and already translated words in, SVG bytes out. No chart loads anything from
outside (pygal's tooltip script is off); the page shows each chart as an image, so nothing
in it runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pygal
from pygal.style import Style

STYLE = Style(
    font_family="'Noto Sans CJK SC', 'Microsoft YaHei', 'WenQuanYi Micro Hei', system-ui, sans-serif",
    background="white", plot_background="white",
    colors=("#2c6fbb", "#b22222", "#e08a00", "#2f8f4e", "#7a4fb5", "#888888"),
)
OPTIONS: dict[str, Any] = {
    "js": [], "style": STYLE, "width": 720, "height": 340, "legend_at_bottom": True, "print_values": True,
    "print_values_position": "top", "truncate_label": -1, "margin": 16,
}


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def _render(chart: Any) -> bytes:
    svg: bytes = chart.render()
    return svg


def targets(rows: Sequence[Mapping[str, Any]], key: str, *, title: str, tested: str, target: str) -> bytes:
    """Per region: distinct vehicles tested against the monthly quota (`key` "quota"), or the
    share of the diesel fleet tested against the winter target in percent (`key` "winter")."""
    chart = pygal.Bar(title=title, **OPTIONS)
    chart.x_labels = [row["region"] for row in rows]
    if key == "quota":
        chart.add(tested, [row[key]["vehicles_tested"] for row in rows])
        chart.add(target, [row[key]["target"] for row in rows])
        chart.value_formatter = lambda v: f"{v:.0f}"
    else:
        chart.add(tested, [_percent(row[key]["coverage"]) for row in rows])
        chart.add(target, [_percent(row[key]["target"]) for row in rows])
        chart.value_formatter = lambda v: f"{v:.1f}%"
    return _render(chart)


def exceedance(by_fuel: Sequence[Mapping[str, Any]], *, title: str, fuel_names: Mapping[str, str]) -> bytes:
    """Exceedance rate in percent per fuel type (groups) and pollutant (series)."""
    chart = pygal.Bar(title=title, **OPTIONS)
    chart.x_labels = [fuel_names.get(row["fuel_type"], row["fuel_type"]) for row in by_fuel]
    pollutants = sorted({p for row in by_fuel for p in row["pollutants"]})
    for pollutant in pollutants:
        chart.add(pollutant, [_percent(row["pollutants"].get(pollutant, {}).get("rate", 0.0)) for row in by_fuel])
    chart.value_formatter = lambda v: f"{v:.1f}%"
    return _render(chart)


def stations(rows: Sequence[Mapping[str, Any]], *, title: str, valid: str) -> bytes:
    """Valid share of each station's measurements in percent, lowest first."""
    measured = [row for row in rows if row["valid_share"] is not None]
    chart = pygal.HorizontalBar(title=title, range=(0, 100), **{**OPTIONS, "height": max(200, 60 + 34 * len(measured))})
    chart.x_labels = [row["code"] for row in measured]
    chart.add(valid, [_percent(row["valid_share"]) for row in measured])
    chart.value_formatter = lambda v: f"{v:.1f}%"
    return _render(chart)
