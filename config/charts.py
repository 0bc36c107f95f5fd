"""Server-rendered SVG charts for the HTML pages.

Framework-free (only the standard library and numpy) so a chart can be unit-tested
and reused by `bench/` without Django. Every function returns a complete, self-contained
`<svg>` string whose text is escaped here; templates insert it with `|safe`.
Charts scale with their container (viewBox + width 100%), so they stay sharp on any
screen and need no JavaScript.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

# Colour-blind-safe palette (Okabe-Ito), shared so a colour means the same thing on every page.
BLUE = "#0072b2"
ORANGE = "#e69f00"
GREEN = "#009e73"
RED = "#d55e00"
GREY = "#94a3b8"
INK = "#334155"
GRID = "#e2e8f0"
FONT = 'font-family="system-ui, sans-serif"'


@dataclass(frozen=True)
class Scale:
    """Linear map of a data interval onto a pixel interval."""

    lo: float
    hi: float
    a: float
    b: float

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.a + (value - self.lo) / span * (self.b - self.a)


def nice_ticks(lo: float, hi: float, n: int = 5, *, integer: bool = False) -> list[float]:
    """Round tick values covering [lo, hi] (1-2-5 steps), so axes read like a lab notebook.
    `integer`: whole-number steps only (label counts: 300, 302, 305 would be a lie)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    steps = [m * mag for m in (1, 2, 2.5, 5, 10)]
    if integer:
        steps = [st for st in steps if st >= 1 and float(st).is_integer()] or [1.0]
    step = next((st for st in steps if st >= raw), steps[-1])
    start = math.ceil(lo / step - 1e-9) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if abs(value) >= 1000:
        # Counts of labels and compounds: 1,250 reads better than 1.25e+03.
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _padded(lo: float, hi: float, frac: float = 0.05) -> tuple[float, float]:
    if hi <= lo:
        # A single value (one model version): give it room proportional to its size.
        pad = max(abs(lo) * 0.05, 0.5)
        return lo - pad, hi + pad
    pad = (hi - lo) * frac
    return lo - pad, hi + pad


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg" {FONT} font-size="11">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _axes(
    x: Scale, y: Scale, xticks: Sequence[float], yticks: Sequence[float], x_label: str, y_label: str
) -> list[str]:
    """Grid lines, tick labels and axis titles for a plot area given by the two scales."""
    out = []
    left, right, bottom, top = x.a, x.b, y.a, y.b
    for t in yticks:
        py = y(t)
        out.append(f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{py:.1f}" y2="{py:.1f}" stroke="{GRID}"/>')
        out.append(f'<text x="{left - 6:.1f}" y="{py + 4:.1f}" text-anchor="end" fill="{INK}">{fmt(t)}</text>')
    for t in xticks:
        px = x(t)
        out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{bottom:.1f}" y2="{top:.1f}" stroke="{GRID}"/>')
        out.append(f'<text x="{px:.1f}" y="{bottom + 16:.1f}" text-anchor="middle" fill="{INK}">{fmt(t)}</text>')
    out.append(f'<rect x="{left:.1f}" y="{top:.1f}" width="{right - left:.1f}" height="{bottom - top:.1f}" '
               f'fill="none" stroke="{GREY}"/>')
    out.append(f'<text x="{(left + right) / 2:.1f}" y="{bottom + 34:.1f}" text-anchor="middle" '
               f'fill="{INK}" font-size="12">{escape(x_label)}</text>')
    cy = (top + bottom) / 2
    out.append(f'<text x="14" y="{cy:.1f}" text-anchor="middle" fill="{INK}" font-size="12" '
               f'transform="rotate(-90 14 {cy:.1f})">{escape(y_label)}</text>')
    return out


def interval_bar(
    *, mean: float, std: float, lo: float, hi: float, units: str = "", z: float = 1.96
) -> str:
    """The prediction as a dot with its mean ± z·std interval on an axis spanning [lo, hi].

    The axis is widened when the interval sticks out, so an extreme prediction is
    still drawn instead of being clipped.
    """
    lo, hi = min(lo, mean - z * std), max(hi, mean + z * std)
    lo, hi = _padded(lo, hi, 0.03)
    w, h = 460, 84
    x = Scale(lo, hi, 20, w - 20)
    left, right = x(mean - z * std), x(mean + z * std)
    body = [f'<line x1="20" x2="{w - 20}" y1="46" y2="46" stroke="{GREY}" stroke-width="2"/>']
    for t in nice_ticks(lo, hi, 6):
        body.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="42" y2="50" stroke="{GREY}"/>'
                    f'<text x="{x(t):.1f}" y="66" text-anchor="middle" fill="{INK}">{fmt(t)}</text>')
    body.append(f'<rect x="{left:.1f}" y="36" width="{max(right - left, 2):.1f}" height="20" rx="4" '
                f'fill="{BLUE}" fill-opacity="0.25" stroke="{BLUE}"/>')
    body.append(f'<circle cx="{x(mean):.1f}" cy="46" r="6" fill="{BLUE}"/>')
    body.append(f'<text x="{x(mean):.1f}" y="26" text-anchor="middle" fill="{INK}" font-size="13" '
                f'font-weight="600">{fmt(mean)} ± {fmt(z * std, 2)}</text>')
    if units:
        body.append(f'<text x="{w - 20}" y="80" text-anchor="end" fill="{GREY}">{escape(units)}</text>')
    label = f"Prediction {fmt(mean)} with 95% interval {fmt(mean - z * std)} to {fmt(mean + z * std)}"
    return _svg(w, h, body, label)


def probability_bars(*, classes: Sequence[str], probabilities: Sequence[float]) -> str:
    """One horizontal bar per class; the most likely class is highlighted."""
    n = len(probabilities)
    row = 26
    w, h = 460, 12 + row * max(n, 1)
    best = int(np.argmax(probabilities)) if n else -1
    x = Scale(0.0, 1.0, 130, w - 50)
    body = []
    for i, p in enumerate(probabilities):
        name = classes[i] if i < len(classes) else f"class {i}"
        y0 = 8 + i * row
        colour = BLUE if i == best else GREY
        body.append(f'<text x="124" y="{y0 + 15}" text-anchor="end" fill="{INK}">{escape(str(name))}</text>')
        body.append(f'<rect x="130" y="{y0 + 2}" width="{x.b - x.a:.1f}" height="18" rx="3" fill="{GRID}"/>')
        body.append(f'<rect x="130" y="{y0 + 2}" width="{max(x(p) - 130, 0):.1f}" height="18" rx="3" fill="{colour}"/>')
        body.append(f'<text x="{w - 44}" y="{y0 + 15}" fill="{INK}">{p:.0%}</text>')
    return _svg(w, h, body, "Predicted class probabilities")


def line_chart(
    *,
    points: Sequence[tuple[float, float]],
    x_label: str,
    y_label: str,
    point_labels: Sequence[str] = (),
    better: str = "higher",
) -> str:
    """A learning curve: points joined in x order, each labelled (e.g. "v2")."""
    w, h = 640, 300
    pts = [(float(a), float(b)) for a, b in points if b is not None and math.isfinite(float(b))]
    if not pts:
        return _svg(w, 60, [f'<text x="{w / 2}" y="34" text-anchor="middle" fill="{GREY}">No trained versions yet</text>'],
                    "Empty learning curve")
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    xlo, xhi = _padded(min(xs), max(xs), 0.08)
    ylo, yhi = _padded(min(ys), max(ys), 0.15)
    x, y = Scale(xlo, xhi, 62, w - 20), Scale(ylo, yhi, h - 50, 16)
    arrow = "↓ better" if better == "lower" else "↑ better"
    body = _axes(x, y, nice_ticks(xlo, xhi, integer=True), nice_ticks(ylo, yhi), x_label, f"{y_label} ({arrow})")
    path = " ".join(f"{'M' if i == 0 else 'L'}{x(a):.1f},{y(b):.1f}" for i, (a, b) in enumerate(pts))
    body.append(f'<path d="{path}" fill="none" stroke="{BLUE}" stroke-width="2.5"/>')
    for i, (a, b) in enumerate(pts):
        body.append(f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="5" fill="#fff" stroke="{BLUE}" stroke-width="2.5">'
                    f"<title>{escape(point_labels[i] if i < len(point_labels) else '')}: {fmt(b, 4)} "
                    f"at {fmt(a, 6)} labels</title></circle>")
        if i < len(point_labels):
            body.append(f'<text x="{x(a):.1f}" y="{y(b) - 10:.1f}" text-anchor="middle" fill="{INK}">'
                        f"{escape(point_labels[i])}</text>")
    return _svg(w, h, body, f"{y_label} against {x_label}")


def parity_plot(
    *, y_true: Sequence[float], y_pred: Sequence[float], y_std: Sequence[float] | None = None, units: str = ""
) -> str:
    """Predicted against measured with ±1.96·std error bars and the y = x line."""
    w, h = 520, 460
    t, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    s = np.asarray(y_std, float) if y_std is not None and len(y_std) == len(t) else np.zeros_like(p)
    if t.size == 0:
        return _svg(w, 60, [f'<text x="{w / 2}" y="34" text-anchor="middle" fill="{GREY}">No validation data</text>'],
                    "Empty parity plot")
    lo = float(min(t.min(), (p - 1.96 * s).min()))
    hi = float(max(t.max(), (p + 1.96 * s).max()))
    lo, hi = _padded(lo, hi)
    x, y = Scale(lo, hi, 62, w - 20), Scale(lo, hi, h - 50, 16)
    unit = f" ({units})" if units else ""
    body = _axes(x, y, nice_ticks(lo, hi), nice_ticks(lo, hi), f"measured{unit}", f"predicted{unit}")
    body.append(f'<line x1="{x(lo):.1f}" y1="{y(lo):.1f}" x2="{x(hi):.1f}" y2="{y(hi):.1f}" '
                f'stroke="{GREY}" stroke-dasharray="5 4"/>')
    for a, b, e in zip(t, p, s, strict=True):
        if e > 0:
            body.append(f'<line x1="{x(a):.1f}" x2="{x(a):.1f}" y1="{y(b - 1.96 * e):.1f}" y2="{y(b + 1.96 * e):.1f}" '
                        f'stroke="{BLUE}" stroke-opacity="0.35"/>')
        body.append(f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="3.2" fill="{BLUE}" fill-opacity="0.8"/>')
    return _svg(w, h, body, "Predicted against measured on the validation set")


def heatmap(*, matrix: Sequence[Sequence[float]], labels: Sequence[str]) -> str:
    """Confusion matrix: rows = true class, columns = predicted; colour by row share."""
    m = np.asarray(matrix, float)
    k = m.shape[0] if m.ndim == 2 else 0
    cell = max(44, min(90, 360 // max(k, 1)))
    left, top = 120, 40
    w, h = left + cell * k + 20, top + cell * k + 50
    body = [f'<text x="{left + cell * k / 2:.1f}" y="16" text-anchor="middle" fill="{INK}" font-size="12">predicted</text>']
    row_sums = m.sum(axis=1, keepdims=True) if k else m
    share = np.divide(m, row_sums, out=np.zeros_like(m), where=row_sums > 0) if k else m
    for i in range(k):
        name = escape(str(labels[i] if i < len(labels) else i))
        body.append(f'<text x="{left - 8}" y="{top + cell * i + cell / 2 + 4:.1f}" text-anchor="end" fill="{INK}">{name}</text>')
        body.append(f'<text x="{left + cell * i + cell / 2:.1f}" y="{top - 6}" text-anchor="middle" fill="{INK}">{name}</text>')
        for j in range(k):
            alpha = 0.08 + 0.85 * float(share[i, j])
            colour = GREEN if i == j else RED
            text = "#fff" if alpha > 0.55 else INK
            body.append(f'<rect x="{left + cell * j}" y="{top + cell * i}" width="{cell - 2}" height="{cell - 2}" '
                        f'rx="3" fill="{colour}" fill-opacity="{alpha:.2f}"/>')
            body.append(f'<text x="{left + cell * j + cell / 2 - 1:.1f}" y="{top + cell * i + cell / 2 + 4:.1f}" '
                        f'text-anchor="middle" fill="{text}" font-size="13">{int(m[i, j])}</text>')
    body.append(f'<text x="14" y="{top + cell * k / 2:.1f}" text-anchor="middle" fill="{INK}" font-size="12" '
                f'transform="rotate(-90 14 {top + cell * k / 2:.1f})">measured</text>')
    return _svg(w, h, body, "Confusion matrix on the validation set")


def reliability_diagram(
    *,
    confidence: Sequence[float],
    accuracy: Sequence[float],
    counts: Sequence[int],
    x_label: str = "mean predicted probability",
    y_label: str = "observed frequency",
) -> str:
    """Calibration curve: observed against predicted per bin (or level), with the diagonal."""
    w, h = 420, 380
    x, y = Scale(0, 1, 62, w - 20), Scale(0, 1, h - 50, 16)
    ticks = [0, 0.25, 0.5, 0.75, 1.0]
    body = _axes(x, y, ticks, ticks, x_label, y_label)
    body.append(f'<line x1="{x(0):.1f}" y1="{y(0):.1f}" x2="{x(1):.1f}" y2="{y(1):.1f}" stroke="{GREY}" stroke-dasharray="5 4"/>')
    pts = [(c, a, n) for c, a, n in zip(confidence, accuracy, counts, strict=False) if n]
    if pts:
        path = " ".join(f"{'M' if i == 0 else 'L'}{x(c):.1f},{y(a):.1f}" for i, (c, a, _) in enumerate(pts))
        body.append(f'<path d="{path}" fill="none" stroke="{BLUE}" stroke-width="2"/>')
        for c, a, n in pts:
            body.append(f'<circle cx="{x(c):.1f}" cy="{y(a):.1f}" r="4" fill="{BLUE}"><title>{n} compounds</title></circle>')
    return _svg(w, h, body, "Calibration curve")


@dataclass(frozen=True)
class PointGroup:
    name: str
    colour: str
    points: np.ndarray  # (n, 2)
    radius: float = 2.5
    opacity: float = 0.6
    titles: Sequence[str] = ()


def scatter_map(*, groups: Sequence[PointGroup], x_label: str = "PC 1", y_label: str = "PC 2") -> str:
    """A 2-D map with one colour per group and a legend; later groups are drawn on top."""
    w, h = 660, 440
    allpts = [g.points for g in groups if len(g.points)]
    if not allpts:
        return _svg(w, 60, [f'<text x="{w / 2}" y="34" text-anchor="middle" fill="{GREY}">Nothing to map</text>'],
                    "Empty map")
    stacked = np.vstack(allpts)
    xlo, xhi = _padded(float(stacked[:, 0].min()), float(stacked[:, 0].max()))
    ylo, yhi = _padded(float(stacked[:, 1].min()), float(stacked[:, 1].max()))
    x, y = Scale(xlo, xhi, 62, w - 190), Scale(ylo, yhi, h - 50, 16)
    body = _axes(x, y, nice_ticks(xlo, xhi), nice_ticks(ylo, yhi), x_label, y_label)
    for g in groups:
        for i, (a, b) in enumerate(g.points):
            title = f"<title>{escape(g.titles[i])}</title>" if i < len(g.titles) else ""
            body.append(f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="{g.radius}" fill="{g.colour}" '
                        f'fill-opacity="{g.opacity}">{title}</circle>')
    for i, g in enumerate(groups):
        ly = 30 + i * 20
        body.append(f'<circle cx="{w - 176}" cy="{ly}" r="5" fill="{g.colour}"/>'
                    f'<text x="{w - 166}" y="{ly + 4}" fill="{INK}">{escape(g.name)} ({len(g.points)})</text>')
    return _svg(w, h, body, "Chemical-space map")

