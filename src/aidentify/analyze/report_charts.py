"""The report's interactive charts, drawn with Plotly (plotly.js inlined once per page).

Plotly because its charts are SVG (crisp in print and screenshots), ``hovermode="x unified"``
shows every curve's value at the hovered second in one box, a legend click hides or shows a
group, pictures given as data URIs sit on a shared time axis (the stimulus strip zooms with the
curves), and the page works from disk: the figures are JSON that plotly.js draws in the browser,
with no request anywhere (``displaylogo`` off; no MathJax, no maps). The cost is plotly.js itself,
about 4.8 MB per page whatever the study's size (docs/analyze.md has the measurements).

Every string from the data (respondent, group, segment names) goes through :func:`plot_text`:
Plotly reads a subset of HTML in labels and decodes entities, so escaping shows a name such as
``<b>x</b>`` literally; the figure JSON escapes ``<`` itself, so no name can close the script.
"""

from __future__ import annotations

import html
import math

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

# One colour per FER+ class (Plotly's D3 palette order), one per group for the valence chart.
CLASS_COLOURS = ("#7f7f7f", "#2ca02c", "#ff7f0e", "#1f77b4", "#d62728", "#8c564b", "#9467bd", "#e377c2")
GROUP_COLOURS = ("#222222", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
PROXY_NOTE = "uncalibrated proxies from class probabilities, not validated measures"
CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "png", "scale": 2}}
STRIP_PX = 90  # height of the stimulus thumbnail row (pixels)


def plot_text(value: object) -> str:
    """``value`` as Plotly label text that shows literally (``<``, ``>`` and ``&`` as entities)."""
    return html.escape(str(value), quote=False)


def plotly_js() -> str:
    """plotly.min.js as shipped in the ``plotly`` package (the page inlines it once)."""
    return get_plotlyjs()


def figure_div(figure: go.Figure, div_id: str) -> str:
    """One figure as a ``<div>`` and the ``<script>`` that draws it (plotly.js must come first)."""
    return pio.to_html(figure, include_plotlyjs=False, full_html=False, div_id=div_id, config=CONFIG,
                       default_width="100%")


def colour_alpha(hex_colour: str, alpha: float) -> str:
    """``#rrggbb`` as a CSS ``rgba()`` with opacity ``alpha`` (0 to 1), for confidence bands."""
    red, green, blue = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def curve_traces(rows: pd.DataFrame, name: str, colour: str, legendgroup: str, showlegend: bool = True,
                 visible: bool = True) -> list[go.Scatter]:
    """The mean of one metric over time and its 95 % confidence band (a closed polygon, no hover).

    ``rows``: aggregate.csv rows of one group and metric, sorted by ``time_s``. The hover box of
    the mean line gives the interval and n; where n < 2 the interval is empty and the band has a gap.
    """
    times = rows["time_s"].to_numpy()
    band = rows.dropna(subset=["ci_low", "ci_high"])
    traces = []
    if len(band):
        traces.append(go.Scatter(
            x=[*band["time_s"], *band["time_s"][::-1]], y=[*band["ci_high"], *band["ci_low"][::-1]],
            fill="toself", fillcolor=colour_alpha(colour, 0.15), line={"width": 0}, hoverinfo="skip",
            legendgroup=legendgroup, showlegend=False, visible=visible, name=f"{name} 95% CI"))
    custom = rows[["ci_low", "ci_high", "n"]].to_numpy()
    traces.append(go.Scatter(
        x=times, y=rows["mean"], mode="lines", name=name, line={"color": colour, "width": 2},
        legendgroup=legendgroup, showlegend=showlegend, visible=visible, customdata=custom,
        hovertemplate="%{y:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}] n=%{customdata[2]}"))
    return traces


def moment_trace(moments: pd.DataFrame, curve: pd.DataFrame, name: str, colour: str, legendgroup: str,
                 visible: bool = True) -> go.Scatter | None:
    """Key moments of one curve as triangles on it (up: a rise, down: a fall), the change on hover."""
    if moments.empty:
        return None
    at = curve.set_index("time_s")["mean"]
    y = [at.get(t, math.nan) for t in moments["time_s"]]
    rises = moments["change"] >= 0
    return go.Scatter(
        x=moments["time_s"], y=y, mode="markers", name=f"{name}: key moments", legendgroup=legendgroup,
        showlegend=False, visible=visible, customdata=moments["change"],
        marker={"symbol": ["triangle-up" if r else "triangle-down" for r in rises], "size": 12, "color": colour,
                "line": {"color": "white", "width": 1}},
        hovertemplate="key moment: %{customdata:+.3f}<extra>" + name + "</extra>")


def add_segments(figure: go.Figure, segments: list[dict]) -> None:
    """Shade every other segment of the stimulus across all rows, and name each one inside the top row."""
    for index, segment in enumerate(segments):
        if index % 2 == 0:
            figure.add_vrect(x0=segment["start_s"], x1=segment["end_s"], row="all", col=1, line_width=0,
                             fillcolor="#000000", opacity=0.05, layer="below")
        figure.add_annotation(x=(segment["start_s"] + segment["end_s"]) / 2, y=1.0, xref="x", yref="y domain",
                              yanchor="top", showarrow=False, font={"size": 11, "color": "#555"},
                              text=plot_text(segment["name"]))


def add_thumbnails(figure: go.Figure, row: int, thumbnails: list[tuple[float, str]], step_s: float) -> None:
    """Stimulus frames (data URIs) centred on their times in the strip of ``row``, sharing its time axis."""
    suffix = "" if row == 1 else str(row)
    for time_s, uri in thumbnails:
        figure.add_layout_image(source=uri, x=time_s, y=0.5, xref=f"x{suffix}", yref=f"y{suffix}", sizex=step_s,
                                sizey=1.0, xanchor="center", yanchor="middle", sizing="contain", layer="above")
    figure.update_yaxes(row=row, col=1, range=[0, 1], visible=False, fixedrange=True)


def base_figure(rows: int, heights: list[float], titles: list[str], strip: bool) -> go.Figure:
    """``rows`` chart rows on one shared time axis (``heights``: fractions), plus the thumbnail strip if ``strip``."""
    figure = make_subplots(rows=rows + strip, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                           row_heights=[*heights, 0.16] if strip else heights, subplot_titles=[*titles, *[""] * strip])
    figure.update_layout(hovermode="x unified", template="plotly_white", margin={"l": 60, "r": 20, "t": 60, "b": 40},
                         legend={"orientation": "h", "y": -0.08, "groupclick": "togglegroup"})
    figure.update_xaxes(title_text="stimulus time (s)", row=rows + strip, col=1)
    return figure


def emotion_figure(aggregate: pd.DataFrame, classes: list[str], groups: list[str], moments: pd.DataFrame,
                   segments: list[dict], thumbnails: list[tuple[float, str]], step_s: float) -> go.Figure:
    """Each class's mean probability with its 95 % band; a menu switches between ``all`` and each group."""
    figure = base_figure(1, [1.0], ["mean class probability (95% CI)"], bool(thumbnails))
    owners: list[str] = []
    for group in ["all", *groups]:
        for index, name in enumerate(classes):
            curve = aggregate[(aggregate.group == group) & (aggregate.metric == name)].sort_values("time_s")
            colour = CLASS_COLOURS[index % len(CLASS_COLOURS)]
            traces = curve_traces(curve, name, colour, legendgroup=name, showlegend=True,
                                  visible=group == "all")
            mark = moment_trace(moments[(moments.group == group) & (moments.metric == name)], curve, name, colour,
                                legendgroup=name, visible=group == "all")
            for trace in [*traces, *([mark] if mark else [])]:
                figure.add_trace(trace, row=1, col=1)
                owners.append(group)
    buttons = [{"label": "all respondents" if group == "all" else f"group {plot_text(group)}", "method": "restyle",
                "args": [{"visible": [owner == group for owner in owners]}]} for group in ["all", *groups]]
    if groups:
        figure.update_layout(updatemenus=[{"buttons": buttons, "x": 0.0, "xanchor": "left", "y": 1.1,
                                           "yanchor": "bottom", "direction": "down", "showactive": True}])
    figure.update_yaxes(title_text="probability", range=[0, 1], row=1, col=1)
    return finish_figure(figure, segments, thumbnails, step_s, strip_row=2, height=480)


def finish_figure(figure: go.Figure, segments: list[dict], thumbnails: list[tuple[float, str]], step_s: float,
                  strip_row: int, height: int) -> go.Figure:
    """Segments shaded, the stimulus strip in row ``strip_row`` (the row :func:`base_figure` added
    for it, when there are thumbnails), and ``height`` pixels for the charts plus the strip's."""
    add_segments(figure, segments)
    if thumbnails:
        add_thumbnails(figure, strip_row, thumbnails, step_s)
    figure.update_layout(height=height + (STRIP_PX if thumbnails else 0))
    return figure


def valence_figure(aggregate: pd.DataFrame, groups: list[str], moments: pd.DataFrame, segments: list[dict],
                   thumbnails: list[tuple[float, str]], step_s: float) -> go.Figure:
    """Valence and expressiveness (means, 95 % bands) of ``all`` and each group, key moments marked."""
    figure = base_figure(2, [0.6, 0.4], [f"valence ({PROXY_NOTE})", "expressiveness (1 - p(neutral), a proxy)"],
                         bool(thumbnails))
    for index, group in enumerate(["all", *groups]):
        colour = GROUP_COLOURS[index % len(GROUP_COLOURS)]
        label = "all respondents" if group == "all" else f"group {plot_text(group)}"
        for row, metric in ((1, "valence"), (2, "expressiveness")):
            curve = aggregate[(aggregate.group == group) & (aggregate.metric == metric)].sort_values("time_s")
            for trace in curve_traces(curve, label, colour, legendgroup=f"g{index}", showlegend=row == 1):
                figure.add_trace(trace, row=row, col=1)
            mark = moment_trace(moments[(moments.group == group) & (moments.metric == metric)], curve,
                                f"{label} {metric}", colour, legendgroup=f"g{index}")
            if mark:
                figure.add_trace(mark, row=row, col=1)
    figure.update_yaxes(title_text="valence", range=[-1, 1], zeroline=True, row=1, col=1)
    figure.update_yaxes(title_text="expressiveness", range=[0, 1], row=2, col=1)
    return finish_figure(figure, segments, thumbnails, step_s, strip_row=3, height=560)


def respondent_figure(epochs: pd.DataFrame, names: list[str], titles: list[str], columns: int = 6) -> go.Figure:
    """Small multiples: each shown respondent's valence (line) and expressiveness (grey) per epoch.

    ``epochs``: epochs.csv rows of the shown respondents; ``titles``: their labels, already plot text.
    """
    rows = max(1, math.ceil(len(names) / columns))
    figure = make_subplots(rows=rows, cols=columns, shared_xaxes="all", shared_yaxes="all", subplot_titles=titles,
                           vertical_spacing=min(0.3 / rows, 0.08), horizontal_spacing=0.02)
    by_name = dict(tuple(epochs.groupby("respondent", sort=False)))
    for index, name in enumerate(names):
        part = by_name.get(name)
        if part is None:
            continue
        part = part.sort_values("time_s")
        row, col = index // columns + 1, index % columns + 1
        figure.add_trace(go.Scatter(x=part["time_s"], y=part["expressiveness"], mode="lines", name="expressiveness",
                                    line={"color": "#bbbbbb", "width": 1}, showlegend=False,
                                    hovertemplate="expressiveness %{y:.2f}<extra></extra>"),
                         row=row, col=col)
        figure.add_trace(go.Scatter(x=part["time_s"], y=part["valence"], mode="lines", name="valence",
                                    line={"color": "#1f77b4", "width": 1.5}, showlegend=False,
                                    hovertemplate="%{x:.1f} s: valence %{y:.2f}<extra></extra>"),
                         row=row, col=col)
    figure.update_yaxes(range=[-1, 1], tickvals=[-1, 0, 1])
    figure.update_annotations(font={"size": 11})
    figure.update_layout(height=140 * rows + 80, template="plotly_white", hovermode="closest",
                         margin={"l": 40, "r": 10, "t": 40, "b": 30})
    return figure
