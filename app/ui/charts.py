"""Server-side inline SVG charts for the console, as pure functions returning safe ``Markup``.

Every chart scales with its container (a ``viewBox`` with ``width="100%"``, so a fixed aspect ratio and
no layout shift), draws in ``currentColor`` with ``cv-`` classes for the page stylesheet to theme, and
carries ``role="img"``, an ``aria-label``, ``<title>`` and ``<desc>`` that read the numbers out in words.
All text goes through ``Markup.format``, which escapes each argument; no ``id`` is emitted, so any
number of charts can share a page. None, nan and ±inf never reach the drawing: they read "no data".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

__all__ = ["Interval", "Share", "Step", "interval_chart", "share_bars", "sparkline", "step_chart"]

WIDTH = 600
LABEL_W = 130  # left column: row labels, right-aligned against the plot
ROW_H = 28
TOP = 34  # room for the visible title
LABEL_CHARS = 18  # longer labels are clipped on screen; the full text stays in a <title> tooltip
NO_DATA = "no data"
STATE_CLASSES = {"done": "cv-done", "current": "cv-current", "pending": "cv-pending", "failed": "cv-failed"}


@dataclass(frozen=True)
class Interval:
    label: str
    estimate: float | None
    low: float | None  # None or ±inf: open-ended, drawn to the plot edge with an arrow
    high: float | None
    emphasis: bool = False


@dataclass(frozen=True)
class Share:
    label: str
    expected: float  # configured weight share in [0, 1]
    observed: float | None  # None while the arm has no units


@dataclass(frozen=True)
class Step:
    percent: float  # candidate's traffic share at this step, 0..100
    state: str  # "done" | "current" | "pending" | "failed"


def _finite(value: float | None) -> float | None:
    """The value as a float when it is a finite number; None, nan and ±inf are all missing."""
    if value is None:
        return None
    number = float(value)
    # Past 1e300 the axis arithmetic (spans, steps) overflows; no metric is that large.
    return number if math.isfinite(number) and abs(number) <= 1e300 else None


def _number(value: float, *, percent: bool = False) -> str:
    """Compact text for a finite value: 1234 -> '1,234', 0.5123 -> '0.512', percent 0.034 -> '3.4%'."""
    shown = value * 100 if percent else value
    size = abs(shown)
    decimals = 0 if size >= 100 or size == 0 else min(12, 2 - math.floor(math.log10(size)))
    text = f"{shown:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if not text.strip("-0.,"):
        text = "0"  # never '-0'
    return text + ("%" if percent else "")


def _value(value: float | None, *, percent: bool = False) -> str:
    number = _finite(value)
    return NO_DATA if number is None else _number(number, percent=percent)


def _bound(value: float | None, *, percent: bool, infinite: str) -> str:
    if value is not None and math.isinf(value):
        return infinite
    number = _finite(value)
    return "n/a" if number is None else _number(number, percent=percent)


def _nice_ticks(low: float, high: float) -> list[float]:
    """3–6 ticks a 1/2/5 × 10^k step apart, the first at or below ``low``, the last at or above ``high``."""
    if high - low <= 1e-12 * max(1.0, abs(low), abs(high)):
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    # One decade below the span every step gives over 6 ticks; the first step that gives at most 6
    # is at most 2.5 times the rejected one, so it still gives at least 3.
    exponent = math.floor(math.log10(high - low)) - 1
    while True:
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0**exponent
            first, last = math.floor(low / step), math.ceil(high / step)
            if last - first <= 5:
                return [float(f"{i * step:.12g}") + 0.0 for i in range(first, last + 1)]
        exponent += 1


def _tick_label(value: float, step: float, *, percent: bool) -> str:
    scale = 100 if percent else 1
    decimals = max(0, -math.floor(math.log10(step * scale) + 1e-9))
    text = f"{value * scale + 0.0:,.{decimals}f}"
    return ("0" if not text.strip("-0.,") else text) + ("%" if percent else "")


def _c(coordinate: float) -> str:
    return f"{coordinate:.1f}"


def _clip(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _svg(kind: str, width: int, height: float, title: str, summary: str, body: Sequence[Markup]) -> Markup:
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" class="cv-chart cv-{}" viewBox="0 0 {} {}" width="100%"'
        ' preserveAspectRatio="xMidYMid meet" role="img" aria-label="{}" font-size="13" fill="currentColor">'
        "<title>{}</title><desc>{}</desc>{}</svg>"
    ).format(kind, width, _c(height), f"{title}. {summary}", title, summary, Markup("").join(body))


def _heading(title: str) -> Markup:
    return Markup('<text class="cv-title" x="0" y="18" font-weight="600">{}</text>').format(title)


def _label(label: str, y: float) -> Markup:
    return Markup(
        '<text class="cv-label" x="{}" y="{}" text-anchor="end" dominant-baseline="middle">'
        "{}<title>{}</title></text>"
    ).format(LABEL_W - 10, _c(y), _clip(label), label)


def _text(x: float, y: float, text: str, css: str, anchor: str = "start") -> Markup:
    return Markup(
        '<text class="{}" x="{}" y="{}" text-anchor="{}" dominant-baseline="middle">{}</text>'
    ).format(css, _c(x), _c(y), anchor, text)


def _line(
    css: str,
    x1: float,
    y1: float,
    x2: float,
    y2: float,
    *,
    width: float = 1,
    dash: str = "none",
    opacity: float = 1,
) -> Markup:
    return Markup(
        '<line class="{}" x1="{}" y1="{}" x2="{}" y2="{}" stroke="currentColor" stroke-width="{}"'
        ' stroke-dasharray="{}" stroke-opacity="{}"/>'
    ).format(css, _c(x1), _c(y1), _c(x2), _c(y2), width, dash, opacity)


def _empty(kind: str, title: str, width: int = WIDTH) -> Markup:
    body = [_heading(title), _text(0, 44, "no data yet", "cv-no-data")]
    return _svg(kind, width, 60, title, "No data yet.", body)


def interval_chart(
    rows: Sequence[Interval],
    *,
    title: str,
    axis_label: str = "",
    reference: float | None = None,
    percent: bool = False,
) -> Markup:
    """Horizontal dot-and-whisker chart: per row a dot at the estimate and a line from low to high."""
    if not rows:
        return _empty("intervals", title)
    ref = _finite(reference)
    values = [_finite(v) for row in rows for v in (row.estimate, row.low, row.high)] + [ref]
    known = [v for v in values if v is not None]
    ticks = _nice_ticks(min(known), max(known)) if known else [0.0, 0.5, 1.0]
    x0, x1 = LABEL_W, WIDTH - 180
    bottom = TOP + len(rows) * ROW_H

    def x(v: float) -> float:
        return x0 + (min(max(v, ticks[0]), ticks[-1]) - ticks[0]) / (ticks[-1] - ticks[0]) * (x1 - x0)

    body = [_heading(title), _line("cv-axis", x0, bottom + 4, x1, bottom + 4)]
    for tick in ticks:
        body.append(_line("cv-grid", x(tick), TOP, x(tick), bottom + 4, opacity=0.15))
        body.append(_line("cv-tick", x(tick), bottom + 4, x(tick), bottom + 9))
        label = _tick_label(tick, ticks[1] - ticks[0], percent=percent)
        body.append(_text(x(tick), bottom + 20, label, "cv-tick-label", "middle"))
    if axis_label:
        body.append(_text((x0 + x1) / 2, bottom + 38, axis_label, "cv-axis-label", "middle"))
    if ref is not None:
        body.append(_line("cv-reference", x(ref), TOP, x(ref), bottom + 4, dash="4 3"))
    sentences = []
    for i, row in enumerate(rows):
        y = TOP + i * ROW_H + ROW_H / 2
        parts = [_label(row.label, y)]
        estimate, low, high = _finite(row.estimate), _finite(row.low), _finite(row.high)
        if estimate is None:
            parts.append(_text(x1 + 10, y, NO_DATA, "cv-value cv-no-data"))
            sentences.append(f"{row.label}: {NO_DATA}.")
        else:
            left, right = (x0 if low is None else x(low)), (x1 if high is None else x(high))
            parts.append(_line("cv-whisker", left, y, right, y, width=2))
            for end, is_open, direction in ((left, low is None, -1), (right, high is None, 1)):
                parts.append(
                    _arrow(end, y, direction) if is_open else _line("cv-cap", end, y - 5, end, y + 5)
                )
            parts.append(
                Markup('<circle class="cv-dot" cx="{}" cy="{}" r="4.5"/>').format(_c(x(estimate)), _c(y))
            )
            est = _number(estimate, percent=percent)
            lo = _bound(row.low, percent=percent, infinite="-∞")
            hi = _bound(row.high, percent=percent, infinite="∞")
            parts.append(_text(x1 + 10, y, f"{est} [{lo}, {hi}]", "cv-value"))
            sentences.append(f"{row.label}: {est}, interval {lo} to {hi}.")
        css = "cv-row cv-emphasis" if row.emphasis else "cv-row"
        body.append(Markup('<g class="{}">{}</g>').format(css, Markup("").join(parts)))
    if ref is not None:
        sentences.append(f"Reference line at {_number(ref, percent=percent)}.")
    height = bottom + (48 if axis_label else 30)
    return _svg("intervals", WIDTH, height, title, " ".join(sentences), body)


def _arrow(x: float, y: float, direction: int) -> Markup:
    """An arrowhead pointing off the plot edge, marking an interval that continues beyond it."""
    tip, back = x + 2 * direction, x - 6 * direction
    points = f"{_c(tip)},{_c(y)} {_c(back)},{_c(y - 4)} {_c(back)},{_c(y + 4)}"
    return Markup('<polygon class="cv-arrow" points="{}"/>').format(points)


def _share(value: float | None) -> str:
    number = _finite(value)
    return NO_DATA if number is None else f"{number * 100:.1f}%"


def share_bars(rows: Sequence[Share], *, title: str) -> Markup:
    """Traffic split: per arm a bar of the observed share with a tick mark at the expected share."""
    if not rows:
        return _empty("shares", title)
    x0, x1 = LABEL_W, WIDTH - 220
    body, sentences = [_heading(title)], []
    for i, row in enumerate(rows):
        y = TOP + i * ROW_H + ROW_H / 2
        observed, expected = _finite(row.observed), _finite(row.expected)
        parts = [_label(row.label, y)]
        parts.append(
            Markup(
                '<rect class="cv-track" x="{}" y="{}" width="{}" height="14" fill-opacity="0.12"/>'
            ).format(x0, _c(y - 7), x1 - x0)
        )
        if observed is not None:
            width = min(max(observed, 0.0), 1.0) * (x1 - x0)
            parts.append(
                Markup('<rect class="cv-bar" x="{}" y="{}" width="{}" height="14"/>').format(
                    x0, _c(y - 7), _c(width)
                )
            )
        if expected is not None:
            at = x0 + min(max(expected, 0.0), 1.0) * (x1 - x0)
            parts.append(_line("cv-expected", at, y - 10, at, y + 10, width=2))
        text = f"observed {_share(row.observed)} / expected {_share(row.expected)}"
        parts.append(_text(x1 + 10, y, text, "cv-value" if observed is not None else "cv-value cv-no-data"))
        body.append(Markup('<g class="cv-row">{}</g>').format(Markup("").join(parts)))
        sentences.append(f"{row.label}: {text}.")
    return _svg("shares", WIDTH, TOP + len(rows) * ROW_H + 8, title, " ".join(sentences), body)


def step_chart(steps: Sequence[Step], *, title: str) -> Markup:
    """A guarded rollout's ramp as a staircase: one segment per step, classed by its state."""
    if not steps:
        return _empty("steps", title)
    x0, x1, top, bottom = 48, WIDTH - 8, TOP + 18, TOP + 138
    width = (x1 - x0) / len(steps)

    def y(percent: float) -> float:
        return bottom - min(max(percent, 0.0), 100.0) / 100 * (bottom - top)

    body = [_heading(title)]
    for level in (0, 50, 100):
        body.append(_line("cv-grid", x0, y(level), x1, y(level), opacity=0.15))
        body.append(_text(x0 - 8, y(level), f"{level}%", "cv-tick-label", "end"))
    sentences, previous = [], None
    for i, step in enumerate(steps):
        css = STATE_CLASSES.get(step.state, "cv-pending")
        left, middle, right = x0 + i * width, x0 + (i + 0.5) * width, x0 + (i + 1) * width
        percent = _finite(step.percent)
        body.append(_text(middle, bottom + 16, f"{i + 1}", "cv-tick-label", "middle"))
        shown = NO_DATA if percent is None else f"{_number(percent)}%"
        sentences.append(f"Step {i + 1}: {shown}, {step.state}.")
        if percent is None:
            body.append(_text(middle, (top + bottom) / 2, NO_DATA, f"cv-no-data {css}", "middle"))
            previous = None
            continue
        if previous is not None:
            body.append(_line(f"cv-riser {css}", left, previous, left, y(percent), width=1.5))
        dash = "5 4" if css == "cv-pending" else "none"
        body.append(_line(f"cv-step {css}", left, y(percent), right, y(percent), width=3, dash=dash))
        body.append(_text(middle, y(percent) - 10, shown, f"cv-step-label {css}", "middle"))
        if css == "cv-current":
            body.append(
                Markup('<circle class="cv-marker cv-current" cx="{}" cy="{}" r="5.5"/>').format(
                    _c(middle), _c(y(percent))
                )
            )
        previous = y(percent)
    return _svg("steps", WIDTH, bottom + 26, title, " ".join(sentences), body)


def sparkline(values: Sequence[float | None], *, title: str, percent: bool = False) -> Markup:
    """A small trend line with gaps at missing values and its minimum and maximum labelled."""
    width, height, x0, x1, top, bottom = 300, 48, 4.0, 186.0, 6.0, 42.0
    if not values:
        return _empty("sparkline", title, width)
    points = [_finite(v) for v in values]
    known = [p for p in points if p is not None]
    if not known:
        body = [_text(0, height / 2, NO_DATA, "cv-no-data")]
        return _svg("sparkline", width, height, title, f"{len(values)} values, all missing: {NO_DATA}.", body)
    low, high = min(known), max(known)

    def at(i: int, value: float) -> tuple[float, float]:
        x = x0 + (x1 - x0) * (i / (len(points) - 1) if len(points) > 1 else 0.5)
        y = (top + bottom) / 2 if high == low else bottom - (value - low) / (high - low) * (bottom - top)
        return x, y

    commands, body = [], []
    for i, value in enumerate(points):
        if value is None:
            continue
        x, y = at(i, value)
        joined = i > 0 and points[i - 1] is not None
        commands.append(f"{'L' if joined else 'M'}{_c(x)} {_c(y)}")
        if not joined and (i == len(points) - 1 or points[i + 1] is None):
            body.append(Markup('<circle class="cv-point" cx="{}" cy="{}" r="1.8"/>').format(_c(x), _c(y)))
    path = Markup(
        '<path class="cv-line" d="{}" fill="none" stroke="currentColor" stroke-width="1.5"'
        ' stroke-linejoin="round"/>'
    )
    body.insert(0, path.format(" ".join(commands)))
    for name, value, y in (("max", high, 16.0), ("min", low, 40.0)):
        cx, cy = at(points.index(value), value)
        body.append(Markup('<circle class="cv-extreme" cx="{}" cy="{}" r="2.5"/>').format(_c(cx), _c(cy)))
        body.append(_text(x1 + 10, y, f"{name} {_number(value, percent=percent)}", f"cv-{name}"))
    missing = len(points) - len(known)
    summary = (
        f"{len(points)} values, {missing} missing: min {_number(low, percent=percent)}, "
        f"max {_number(high, percent=percent)}, latest {_number(known[-1], percent=percent)}."
    )
    return _svg("sparkline", width, height, title, summary, body)
