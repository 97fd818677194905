"""Server-side SVG charts for the analytics pages: no JavaScript, no CDN
(docs/segments.md#analytics).

Each function returns safe SVG markup (every label escaped) for a template to embed inline.
"""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from tagging.models import DEFAULT_COLOURS

FONT = "font-family:sans-serif;font-size:12px"


def _fmt(n: float) -> str:
    return f"{n:.0%}" if isinstance(n, float) and n <= 1 else f"{int(n):,}"


def bar_chart(
    items: list[tuple[str, float]], *, title: str, width: int = 720, colour: str = "#1677FF"
) -> SafeString:
    """Horizontal bars, one per (label, value); values that are floats <= 1 print as percents."""
    items = items[:40]
    label_w, bar_h, gap, top = 180, 18, 6, 28
    height = top + len(items) * (bar_h + gap) + 10
    peak = max((v for _l, v in items), default=0) or 1
    span = width - label_w - 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="tagdesk-chart" role="img" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" style="{FONT}"><title>{escape(title)}</title>',
        f'<text x="0" y="16" style="font-weight:bold">{escape(title)}</text>',
    ]
    if not items:
        parts.append(f'<text x="0" y="{top + 14}">—</text>')
    for i, (label, value) in enumerate(items):
        y = top + i * (bar_h + gap)
        w = max(1, round(span * value / peak)) if value else 0
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(str(label)[:24])}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="{colour}"><title>'
            f"{escape(str(label))}: {_fmt(value)}</title></rect>"
            f'<text x="{label_w + w + 4}" y="{y + 13}">{_fmt(value)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated label is escaped


def stacked_columns(
    days: list, series: dict[str, list[int]], *, title: str, width: int = 720, height: int = 260
) -> SafeString:
    """Columns per day stacked by series (at most 8 series; the rest are summed as "…"), with a
    legend; the y axis shows the highest daily total."""
    names = sorted(series, key=lambda k: -sum(series[k]))
    if len(names) > 8:
        other = [sum(v) for v in zip(*(series[k] for k in names[7:]), strict=True)]
        series = {**{k: series[k] for k in names[:7]}, "…": other}
        names = [*names[:7], "…"]
    left, top, bottom, legend_w = 50, 28, 30, 150
    plot_w, plot_h = width - left - legend_w - 10, height - top - bottom
    totals = [sum(series[k][i] for k in names) for i in range(len(days))]
    peak = max(totals, default=0) or 1
    col_w = plot_w / max(1, len(days))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="tagdesk-chart" role="img" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" style="{FONT}"><title>{escape(title)}</title>',
        f'<text x="0" y="16" style="font-weight:bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 10}" text-anchor="end">{peak:,}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for i, day in enumerate(days):
        y: float = top + plot_h
        for s, name in enumerate(names):
            value = series[name][i]
            if not value:
                continue
            h = plot_h * value / peak
            y -= h
            parts.append(
                f'<rect x="{left + i * col_w + 1:.1f}" y="{y:.1f}" width="{max(1, col_w - 2):.1f}" height="{h:.1f}"'
                f' fill="{DEFAULT_COLOURS[s % len(DEFAULT_COLOURS)]}"><title>{escape(str(day))} · {escape(name)}: {value:,}'
                "</title></rect>"
            )
    if days:
        for i in sorted({0, len(days) // 2, len(days) - 1}):
            parts.append(
                f'<text x="{left + i * col_w + col_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
                f"{escape(str(days[i]))}</text>"
            )
    else:
        parts.append(f'<text x="{left + 10}" y="{top + plot_h / 2}">—</text>')
    for s, name in enumerate(names):
        y = top + s * 18
        parts.append(
            f'<rect x="{width - legend_w}" y="{y}" width="12" height="12" fill="{DEFAULT_COLOURS[s % len(DEFAULT_COLOURS)]}"/>'
            f'<text x="{width - legend_w + 16}" y="{y + 11}">{escape(str(name)[:18])}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated label is escaped
