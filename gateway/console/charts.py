"""Server-rendered SVG charts for the console: no script, no canvas, works under the CSP.

Only presentation attributes are used (never ``style``), so the pages' ``style-src 'self'``
allows them. Every text is escaped by markupsafe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flask_babel import gettext as _
from markupsafe import Markup, escape

COLOURS = ("#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2")
WIDTH, HEIGHT, PAD = 640, 200, 36


def line_chart(
    title: str, labels: Sequence[str], series: Mapping[str, Sequence[int]], *, label_every: int = 6
) -> Markup:
    """Lines over a shared x axis (e.g. hours); ``series`` name -> values, same length as
    ``labels``."""
    n = max(len(labels), 1)
    top = max((v for values in series.values() for v in values), default=0) or 1
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def x(i: int) -> float:
        return PAD + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: int) -> float:
        return HEIGHT - PAD - plot_h * v / top

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT + 20 * len(series)}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#999"/>',
        f'<text x="{PAD - 4}" y="{PAD}" text-anchor="end" font-size="11">{top}</text>',
        f'<text x="{PAD - 4}" y="{HEIGHT - PAD}" text-anchor="end" font-size="11">0</text>',
    ]
    for i, label in enumerate(labels):
        if i % label_every == 0:
            parts.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - PAD + 14}" text-anchor="middle" '
                f'font-size="10">{escape(label)}</text>'
            )
    for k, (name, values) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        # "clicks: 4542" and "clicks (4542)", with the reader's punctuation (点击：4542).
        total = _("%(label)s: %(value)s", label=name, value=sum(values))
        legend = _("%(name)s (%(n)s)", name=name, n=sum(values))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
            f"<title>{escape(total)}</title></polyline>"
        )
        legend_y = HEIGHT + 14 + 20 * k
        parts.append(
            f'<rect x="{PAD}" y="{legend_y - 9}" width="12" height="10" fill="{colour}"/>'
            f'<text x="{PAD + 18}" y="{legend_y}" font-size="12">{escape(legend)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every inserted text is escaped above)


def bar_chart(title: str, values: Mapping[str, int], empty: str = "") -> Markup:
    """Horizontal bars, one per entry, largest first; ``empty`` is shown when there are none."""
    rows = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    if not rows:
        return Markup('<p class="help">{}</p>').format(empty)
    top = max((v for _, v in rows), default=0) or 1
    row_h, label_w = 22, 150
    height = max(row_h * len(rows), row_h) + 8
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (name, value) in enumerate(rows):
        width = (WIDTH - label_w - 80) * value / top
        y = 4 + i * row_h
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12">'
            f"{escape(name)}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{width:.1f}" height="14" '
            f'fill="{COLOURS[0]}"/>'
            f'<text x="{label_w + width + 6:.1f}" y="{y + 14}" font-size="12">{value}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every inserted text is escaped above)
