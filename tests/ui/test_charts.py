"""The console's inline SVG charts: well-formed, accessible, escaped, and drawn where the numbers say."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup

from app.ui.charts import Interval, Share, Step, interval_chart, share_bars, sparkline, step_chart

NS = "{http://www.w3.org/2000/svg}"
NAN, INF = float("nan"), float("inf")
HOSTILE = ["<script>alert(1)</script>", '"onload="x', "'><svg onload=alert(1)>", "a & b"]
SPELLED_OUT_NON_FINITE = re.compile(r"\b((?i:nan|inf|infinity)|None)\b")  # Python's spellings leaking through
ROOT_ATTRIBUTES = {
    "class",
    "viewBox",
    "width",
    "preserveAspectRatio",
    "role",
    "aria-label",
    "font-size",
    "fill",
}


def parse(svg: Markup) -> ET.Element:
    assert isinstance(svg, Markup)
    root = ET.fromstring(str(svg))
    assert root.tag == f"{NS}svg"
    return root


def elements(root: ET.Element, tag: str, css: str = "") -> list[ET.Element]:
    return [e for e in root.iter(f"{NS}{tag}") if not css or css in e.get("class", "").split()]


def texts(root: ET.Element, css: str) -> list[str]:
    return [e.text or "" for e in elements(root, "text", css)]


def number(label: str) -> float:
    return float(label.replace(",", "").rstrip("%"))


def f(value: str | None) -> float:
    assert value is not None
    return float(value)


CHARTS: dict[str, Callable[[str], Markup]] = {
    "interval": lambda label: interval_chart(
        [Interval(label, 0.034, 0.012, 0.056, emphasis=True), Interval("b", 0.02, -INF, None)],
        title=label,
        axis_label=label,
        reference=0.0,
        percent=True,
    ),
    "share": lambda label: share_bars([Share(label, 0.5, 0.498), Share("b", 0.5, None)], title=label),
    "step": lambda label: step_chart([Step(5, "done"), Step(25, label), Step(50, "pending")], title=label),
    "sparkline": lambda label: sparkline([0.01, None, 0.02, 0.04], title=label, percent=True),
    "empty interval": lambda label: interval_chart([], title=label),
    "empty share": lambda label: share_bars([], title=label),
    "empty step": lambda label: step_chart([], title=label),
    "empty sparkline": lambda label: sparkline([], title=label),
}


class TestEveryChartIsAnAccessibleScalableSvg:
    @pytest.mark.parametrize("kind", CHARTS)
    def test_chart_is_well_formed_svg_that_scales_and_reads_out(self, kind: str) -> None:
        root = parse(CHARTS[kind]("Traffic"))
        assert root.get("width") == "100%"
        assert root.get("height") is None  # the viewBox alone fixes the aspect ratio
        view = [float(v) for v in f"{root.get('viewBox')}".split()]
        assert view[:2] == [0, 0] and view[2] > 0 and view[3] > 0
        assert root.get("role") == "img"
        assert f"{root.get('aria-label')}".startswith("Traffic. ")
        children = list(root)
        assert children[0].tag == f"{NS}title" and children[0].text == "Traffic"
        assert children[1].tag == f"{NS}desc" and children[1].text
        assert all(c.startswith("cv-") for e in root.iter() for c in e.get("class", "").split())

    @pytest.mark.parametrize("kind", CHARTS)
    def test_chart_has_no_script_ids_fonts_or_network(self, kind: str) -> None:
        svg = str(CHARTS[kind]("Traffic"))
        root = parse(CHARTS[kind]("Traffic"))
        assert not any(e.get("id") for e in root.iter())  # several charts share one page
        assert not elements(root, "script") and not elements(root, "foreignObject")
        for needle in ("font-family", "href", "url(", "@import", "<style", "javascript"):
            assert needle not in svg
        assert svg.count("http") == 1  # only the xmlns


class TestUserTextIsEscaped:
    @pytest.mark.parametrize("hostile", HOSTILE)
    @pytest.mark.parametrize("kind", CHARTS)
    def test_hostile_labels_render_as_text_never_as_markup(self, kind: str, hostile: str) -> None:
        svg = str(CHARTS[kind](hostile))
        root = parse(Markup(svg))  # a quote breaking out of an attribute would not parse or would add one
        assert "<script" not in svg and "<svg onload" not in svg and '"onload="' not in svg
        assert set(root.attrib) == ROOT_ATTRIBUTES
        assert not any("onload" in e.attrib for e in root.iter())
        assert root[0].text == hostile  # the <title> round-trips the exact string
        assert hostile in f"{root.get('aria-label')}"

    def test_labels_and_axis_label_are_escaped_in_interval_rows(self) -> None:
        svg = interval_chart(
            [Interval("<script>alert(1)</script>", 1.0, 0.0, 2.0)], title="t", axis_label='"onload="x'
        )
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
        assert "&#34;onload=&#34;x" in svg
        root = parse(svg)
        assert texts(root, "cv-axis-label") == ['"onload="x']
        label = elements(root, "text", "cv-label")[0]
        assert label.text is not None and label.text.startswith("<script>")  # clipped on screen
        assert label[0].text == "<script>alert(1)</script>"  # whole in the tooltip

    def test_unknown_step_state_never_becomes_a_class(self) -> None:
        root = parse(step_chart([Step(10, 'x" onload="alert(1)')], title="ramp"))
        segment = elements(root, "line", "cv-step")[0]
        assert segment.get("class") == "cv-step cv-pending"
        assert 'onload="alert(1)' in f"{root[1].text}"  # still read out, as text


class TestIntervalChartGeometry:
    ROWS = [
        Interval("control", 0.031, 0.020, 0.042, emphasis=True),
        Interval("short", 0.052, 0.030, 0.075),
        Interval("friendly", -0.004, -0.020, 0.013),
        Interval("formal", 0.012, 0.001, 0.024),
    ]

    def test_dots_are_ordered_like_the_estimates_and_whiskers_contain_them(self) -> None:
        root = parse(interval_chart(self.ROWS, title="Thumbs up", reference=0.0, percent=True))
        dots = [f(c.get("cx")) for c in elements(root, "circle", "cv-dot")]
        estimates = [f(str(row.estimate)) for row in self.ROWS]
        assert sorted(range(4), key=lambda i: dots[i]) == sorted(range(4), key=lambda i: estimates[i])
        assert sorted(dots) != dots  # not merely drawn in row order
        for dot, whisker in zip(dots, elements(root, "line", "cv-whisker"), strict=True):
            assert f(whisker.get("x1")) < dot < f(whisker.get("x2"))

    def test_emphasised_row_carries_the_emphasis_class(self) -> None:
        root = parse(interval_chart(self.ROWS, title="t"))
        rows = [g for g in elements(root, "g", "cv-row")]
        assert ["cv-emphasis" in g.get("class", "") for g in rows] == [True, False, False, False]

    def test_values_are_written_as_estimate_and_interval(self) -> None:
        root = parse(interval_chart(self.ROWS, title="t", percent=True))
        assert texts(root, "cv-value")[0] == "3.1% [2%, 4.2%]"
        plain = parse(
            interval_chart(
                [Interval("a", 1234.0, 1000.0, 1500.5), Interval("b", 0.5123, 0.0, 1.0)], title="t"
            )
        )
        assert texts(plain, "cv-value") == ["1,234 [1,000, 1,500]", "0.512 [0, 1]"]

    def test_ticks_are_percentages_when_asked(self) -> None:
        root = parse(interval_chart(self.ROWS, title="t", percent=True))
        labels = texts(root, "cv-tick-label")
        assert all(label.endswith("%") for label in labels)
        assert "0%" in labels

    def test_reference_line_is_dashed_at_the_reference_value(self) -> None:
        root = parse(interval_chart([Interval("a", 0.0, -1.0, 1.0)], title="t", reference=0.0))
        reference = elements(root, "line", "cv-reference")[0]
        dot = elements(root, "circle", "cv-dot")[0]
        assert reference.get("x1") == reference.get("x2") == dot.get("cx")
        assert reference.get("stroke-dasharray") not in (None, "none")

    def test_reference_outside_the_data_is_still_on_the_axis(self) -> None:
        root = parse(interval_chart([Interval("a", 5.0, 4.0, 6.0)], title="t", reference=0.0))
        ticks = [number(t) for t in texts(root, "cv-tick-label")]
        assert ticks[0] <= 0.0 and ticks[-1] >= 6.0

    @pytest.mark.parametrize("open_low", [-INF, None, NAN])
    def test_open_lower_bound_reaches_the_left_edge_with_an_arrow(self, open_low: float | None) -> None:
        root = parse(
            interval_chart([Interval("a", 1.0, open_low, 2.0), Interval("b", 3.0, 2.5, 4.0)], title="t")
        )
        edge = min(f(t.get("x1")) for t in elements(root, "line", "cv-tick"))
        whisker = elements(root, "line", "cv-whisker")[0]
        assert f(whisker.get("x1")) == edge
        arrow = elements(root, "polygon", "cv-arrow")
        assert len(arrow) == 1
        assert min(float(p.split(",")[0]) for p in f"{arrow[0].get('points')}".split()) < edge
        assert len(elements(root, "line", "cv-cap")) == 3  # the closed ends only

    def test_open_upper_bound_reaches_the_right_edge(self) -> None:
        root = parse(interval_chart([Interval("a", 1.0, 0.5, INF), Interval("b", 3.0, 2.5, 4.0)], title="t"))
        edge = max(f(t.get("x1")) for t in elements(root, "line", "cv-tick"))
        assert f(elements(root, "line", "cv-whisker")[0].get("x2")) == edge
        assert "1 [0.5, ∞]" in texts(root, "cv-value")

    def test_description_reads_the_numbers(self) -> None:
        root = parse(
            interval_chart([Interval("short", 0.034, 0.012, 0.056)], title="t", reference=0.0, percent=True)
        )
        assert root[1].text == "short: 3.4%, interval 1.2% to 5.6%. Reference line at 0%."


def tick_values(root: ET.Element) -> list[float]:
    return [number(t) for t in texts(root, "cv-tick-label")]


class TestNiceTicks:
    @given(
        st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=6),
        st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6)),
    )
    def test_ticks_are_three_to_six_nice_steps_covering_data_and_reference(
        self, estimates: list[float], reference: float | None
    ) -> None:
        rows = [Interval(f"arm {i}", e, e - abs(e) * 0.1, e + 1.0) for i, e in enumerate(estimates)]
        ticks = tick_values(parse(interval_chart(rows, title="t", reference=reference)))
        assert 3 <= len(ticks) <= 6
        step = ticks[1] - ticks[0]
        assert all(math.isclose(b - a, step, rel_tol=1e-6) for a, b in itertools.pairwise(ticks))
        mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
        assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 5))
        values = [v for row in rows for v in (row.estimate, row.low, row.high) if v is not None]
        values += [] if reference is None else [reference]
        slack = step * 1e-6
        assert ticks[0] <= min(values) + slack and ticks[-1] >= max(values) - slack

    def test_identical_values_still_get_an_axis(self) -> None:
        ticks = tick_values(parse(interval_chart([Interval("a", 0.0, 0.0, 0.0)], title="t")))
        assert 3 <= len(ticks) <= 6 and ticks[0] < 0 < ticks[-1]


class TestMissingNumbersReadNoData:
    @pytest.mark.parametrize("bad", [NAN, INF, -INF, None])
    def test_missing_estimate_is_no_data_not_nan(self, bad: float | None) -> None:
        svg = interval_chart(
            [Interval("a", bad, bad, bad), Interval("b", 0.5, 0.4, 0.6)], title="t", reference=bad
        )
        root = parse(svg)
        assert texts(root, "cv-value")[0] == "no data"
        assert len(elements(root, "circle", "cv-dot")) == 1
        assert "a: no data." in f"{root[1].text}"
        assert not SPELLED_OUT_NON_FINITE.search(svg)

    @pytest.mark.parametrize(
        "svg",
        [
            interval_chart([Interval("a", NAN, NAN, NAN)], title="t", reference=NAN, percent=True),
            share_bars([Share("a", NAN, NAN), Share("b", INF, None)], title="t"),
            step_chart([Step(NAN, "done"), Step(INF, "current")], title="t"),
            sparkline([NAN, None, INF, -INF], title="t"),
        ],
        ids=["interval", "share", "step", "sparkline"],
    )
    def test_every_chart_survives_only_missing_numbers(self, svg: Markup) -> None:
        parse(svg)
        assert "no data" in svg
        assert not SPELLED_OUT_NON_FINITE.search(svg)

    @pytest.mark.parametrize("render", [interval_chart, share_bars, step_chart, sparkline])
    def test_empty_input_is_a_small_no_data_yet_chart(self, render: Callable[..., Markup]) -> None:
        root = parse(render([], title="t"))
        assert texts(root, "cv-no-data") == ["no data yet"]
        assert root[1].text == "No data yet."


class TestShareBars:
    def test_expected_tick_and_observed_bar_are_proportional_to_the_track(self) -> None:
        rows = [Share("a", 0.5, 0.498), Share("b", 0.3, 0.31), Share("c", 0.2, 0.192)]
        root = parse(share_bars(rows, title="split"))
        for row, track, bar, tick in zip(
            rows,
            elements(root, "rect", "cv-track"),
            elements(root, "rect", "cv-bar"),
            elements(root, "line", "cv-expected"),
            strict=True,
        ):
            left, width = f(track.get("x")), f(track.get("width"))
            assert f(tick.get("x1")) == pytest.approx(left + row.expected * width, abs=0.05)
            assert f(bar.get("x")) == left
            assert row.observed is not None
            assert f(bar.get("width")) == pytest.approx(row.observed * width, abs=0.05)

    def test_text_reads_observed_and_expected_percentages(self) -> None:
        root = parse(share_bars([Share("a", 0.5, 0.498), Share("b", 0.5, None)], title="split"))
        assert texts(root, "cv-value") == [
            "observed 49.8% / expected 50.0%",
            "observed no data / expected 50.0%",
        ]
        assert len(elements(root, "rect", "cv-bar")) == 1  # no bar without units
        assert root[1].text == "a: observed 49.8% / expected 50.0%. b: observed no data / expected 50.0%."

    def test_shares_outside_zero_to_one_stay_on_the_track(self) -> None:
        root = parse(share_bars([Share("a", 1.7, 1.2)], title="split"))
        track, bar = elements(root, "rect", "cv-track")[0], elements(root, "rect", "cv-bar")[0]
        right = f(track.get("x")) + f(track.get("width"))
        assert f(bar.get("width")) == f(track.get("width"))
        assert f(elements(root, "line", "cv-expected")[0].get("x1")) == right


class TestStepChart:
    STEPS = [Step(5, "done"), Step(25, "done"), Step(50, "current"), Step(100, "pending")]

    def test_current_step_is_marked_on_its_segment(self) -> None:
        root = parse(step_chart(self.STEPS, title="ramp"))
        markers = elements(root, "circle", "cv-marker")
        assert len(markers) == 1 and "cv-current" in f"{markers[0].get('class')}"
        current = elements(root, "line", "cv-current")
        segment = next(s for s in current if "cv-step" in f"{s.get('class')}")
        assert f(segment.get("x1")) < f(markers[0].get("cx")) < f(segment.get("x2"))
        assert f(markers[0].get("cy")) == f(segment.get("y1"))

    def test_segments_are_classed_by_state_and_climb_with_percent(self) -> None:
        root = parse(step_chart([*self.STEPS[:3], Step(100, "failed")], title="ramp"))
        segments = elements(root, "line", "cv-step")
        assert [s.get("class") for s in segments] == [
            "cv-step cv-done",
            "cv-step cv-done",
            "cv-step cv-current",
            "cv-step cv-failed",
        ]
        heights = [f(s.get("y1")) for s in segments]
        assert heights == sorted(heights, reverse=True) and len(set(heights)) == 4
        # a staircase: each step starts where the previous one ends
        assert [f(s.get("x1")) for s in segments[1:]] == [f(s.get("x2")) for s in segments[:-1]]
        assert len(elements(root, "line", "cv-riser")) == 3
        assert texts(root, "cv-step-label") == ["5%", "25%", "50%", "100%"]

    def test_pending_steps_are_dashed_so_they_differ_without_colour(self) -> None:
        root = parse(step_chart(self.STEPS, title="ramp"))
        pending = [s for s in elements(root, "line", "cv-step") if "cv-pending" in f"{s.get('class')}"]
        assert [s.get("stroke-dasharray") for s in pending] == ["5 4"]

    def test_description_reads_each_step(self) -> None:
        root = parse(step_chart(self.STEPS, title="ramp"))
        assert (
            root[1].text
            == "Step 1: 5%, done. Step 2: 25%, done. Step 3: 50%, current. Step 4: 100%, pending."
        )


def path_commands(root: ET.Element) -> list[str]:
    return re.findall(r"[ML]", f"{elements(root, 'path', 'cv-line')[0].get('d')}")


class TestSparkline:
    def test_missing_values_break_the_line(self) -> None:
        root = parse(sparkline([1.0, 2.0, None, 3.0, 4.0], title="errors"))
        assert path_commands(root) == ["M", "L", "M", "L"]
        assert (
            path_commands(parse(sparkline([1.0, 2.0, NAN, 3.0, 3.5, INF, 4.0, 5.0], title="t")))
            == ["M", "L"] * 3
        )
        assert path_commands(parse(sparkline([1.0, 2.0, 3.0], title="t"))) == ["M", "L", "L"]

    def test_a_value_alone_between_gaps_is_drawn_as_a_point(self) -> None:
        root = parse(sparkline([1.0, None, 2.0, None, 3.0, 4.0], title="t"))
        assert len(elements(root, "circle", "cv-point")) == 2

    def test_min_and_max_are_labelled_and_marked(self) -> None:
        root = parse(sparkline([0.02, 0.01, None, 0.04, 0.03], title="error rate", percent=True))
        assert texts(root, "cv-max") == ["max 4%"] and texts(root, "cv-min") == ["min 1%"]
        marks = elements(root, "circle", "cv-extreme")
        assert f(marks[0].get("cy")) < f(marks[1].get("cy"))  # max above min
        assert root[1].text == "5 values, 1 missing: min 1%, max 4%, latest 3%."

    def test_flat_or_single_values_draw_without_dividing_by_zero(self) -> None:
        for values in ([2.0], [2.0, 2.0, 2.0]):
            root = parse(sparkline(values, title="t"))
            assert texts(root, "cv-max") == ["max 2"]

    def test_all_missing_is_no_data(self) -> None:
        root = parse(sparkline([None, None], title="t"))
        assert texts(root, "cv-no-data") == ["no data"]
        assert root[1].text == "2 values, all missing: no data."
