"""Chart pieces shared by the Compare page and its stopping helpers: one colour per run on every
chart, and run legends that are never cut off.

A run's label ("5058529e · sigma=0.1 arch=seed-double …") can be longer than a half-page chart
is wide at a 1400 px window; Vega truncates a legend label past its `labelLimit` and clips a
legend wider than the chart. So labels are wrapped into short lines here (Vega draws a list of
strings as lines, see `run_legend`'s `labelExpr`) and the run legend sits below the plot, one
run per row. A second legend (detectors, latent spaces) goes above the plot, where it cannot
push the run legend sideways out of the chart.
"""

from __future__ import annotations

import textwrap

import altair as alt

from priorlab.dashboard import data

LINE_CHARS = 52  # a legend line: ~350 px at Vega's 11 px labels, inside a half-page chart at 1400 px
# Streamlit's `height` holds the whole chart: title, axes and legends (measured in Chromium).
PLOT_PX = 200  # the plot itself
CHROME_PX = 140  # title, x axis and its title, the gap above the legend
LINE_PX = 20  # one legend line with its padding
TOP_LEGEND_PX = 60  # a one-row legend above the plot, with its title
LINE_BREAK = "\n"  # between the lines of a wrapped label (split again by the legend's labelExpr)


def wrap(label: str, width: int = LINE_CHARS) -> str:
    """`label` broken at spaces into lines of at most `width` characters (long words split)."""
    return LINE_BREAK.join(textwrap.wrap(label, width, break_on_hyphens=False)) or label


def lines(labels) -> int:
    """How many legend lines these (wrapped) labels take."""
    return sum(str(s).count(LINE_BREAK) + 1 for s in set(labels))


def run_legend() -> alt.Legend:
    """Below the plot, one run per row, each label on as many lines as it was wrapped to."""
    return alt.Legend(orient="bottom", direction="vertical", columns=1, title=None, labelLimit=0,
                      labelExpr="split(datum.label, '\\n')")  # LINE_BREAK


NEUTRAL = "#808080"  # a second legend's symbols: colour means run on these charts, so not a hue


def top_legend(title: str, dashes: bool = True) -> alt.Legend:
    """A short second legend (detectors, spaces) above the plot, in one row. Its symbols show
    what tells the entries apart (a dash pattern, or the shape of a point) in a neutral grey;
    Vega's default drew them as black dots, which told nothing."""
    if dashes:
        look = {"symbolType": "stroke", "symbolStrokeColor": NEUTRAL, "symbolStrokeWidth": 2}
    else:
        look = {"symbolFillColor": NEUTRAL, "symbolStrokeColor": NEUTRAL}
    return alt.Legend(orient="top", direction="horizontal", title=title, **look)


class RunColors:
    """One hue per run in the page's order (`data.PALETTE`), the same on every chart: each chart's
    scale lists the runs it shows in that order, with those runs' hues."""

    def __init__(self, names: dict[str, str]):
        self.label = {rid: wrap(name) for rid, name in names.items()}
        self.hue = {self.label[rid]: data.PALETTE[i % len(data.PALETTE)] for i, rid in enumerate(names)}

    def scale(self, shown) -> alt.Scale:
        present = set(shown)
        domain = [n for n in self.hue if n in present]
        return alt.Scale(domain=domain, range=[self.hue[n] for n in domain])

    def color(self, shown, legend: bool = True) -> alt.Color:
        """The `run:N` colour channel over the labels in `shown` (a chart's `run` column)."""
        return alt.Color("run:N", scale=self.scale(shown), legend=run_legend() if legend else None)

    def height(self, shown, top_legend: bool = False) -> int:
        """A chart height that leaves the plot `PLOT_PX` whatever its legends hold."""
        return PLOT_PX + CHROME_PX + LINE_PX * lines(shown) + (TOP_LEGEND_PX if top_legend else 0)
