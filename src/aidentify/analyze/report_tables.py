"""The report's tables as plain rows of display strings (the template escapes them).

Groups: per group, respondents, face share and the stimulus-long means of the curves; segments:
one row per segment and metric, one column per group (mean, 95 % CI, n), the p value from
``segment_summary.csv``; data quality: one row per recording, the worst face share first.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

QUALITY_ROWS = 1000  # recordings listed in the data-quality table at most (the worst face share first)


def number(value, digits: int = 3) -> str:
    """``value`` rounded for the page; empty for a missing value."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(value) else f"{value:.{digits}f}"


def p_text(value) -> str:
    """A p value as journals print it: three decimals, ``< 0.001`` below that, empty when missing."""
    text = number(value)
    return "< 0.001" if text and float(value) < 0.001 else text


def interval(row) -> str:
    """``mean [low, high]`` of an aggregate or segment row (just the mean where the CI is empty)."""
    low, high = number(row.get("ci_low")), number(row.get("ci_high"))
    return f"{number(row.get('mean'))} [{low}, {high}]" if low and high else number(row.get("mean"))


def in_group(summary: dict, group: str) -> bool:
    return group == "all" or group in {str(v) for v in (summary.get("groups") or {}).values()}


def group_rows(aggregate: pd.DataFrame, summaries: list[dict], classes: list[str], groups: list[str]) -> list[dict]:
    """One row per group (``all`` first): respondents, mean face share, time-averaged valence and
    expressiveness, and the non-neutral class with the highest time-averaged probability.

    Respondents come from the summaries (the largest n in aggregate.csv where there are none).
    """
    rows = []
    for group in ["all", *groups]:
        part = aggregate[aggregate["group"] == group]
        means = part.groupby("metric")["mean"].mean()
        members = [s for s in summaries if in_group(s, group)]
        shares = [float(s["face_share"]) for s in members if isinstance(s.get("face_share"), (int, float))]
        emotions = means.reindex([c for c in classes if c != "neutral"]).dropna()
        top = emotions.idxmax() if len(emotions) else ""
        rows.append({
            "group": group,
            "respondents": len(members) if members else int(np.nan_to_num(part["n"].max())) if len(part) else 0,
            "face_share": f"{np.mean(shares):.0%}" if shares else "",
            "valence": number(means.get("valence")), "expressiveness": number(means.get("expressiveness")),
            "top": f"{top} ({number(emotions[top])})" if top else "",
        })
    return rows


def segment_table(segments: pd.DataFrame, spans: list[dict], groups: list[str]) -> dict:
    """``{"groups": [...], "rows": [{"segment", "span", "metric", "cells": [...], "p"}]}`` in file order."""
    present = [g for g in groups if g in set(segments.get("group", pd.Series(dtype=str)))]
    where = {s.get("name"): f"{number(s.get('start_s'), 1)}–{number(s.get('end_s'), 1)} s" for s in spans}
    rows = []
    if len(segments):
        for (segment, metric), part in segments.groupby(["segment", "metric"], sort=False):
            by_group = {row["group"]: row for row in part.to_dict("records")}
            cells = [(interval(by_group[g]), str(int(by_group[g]["n"])) if number(by_group[g].get("n")) else "")
                     if g in by_group else ("", "") for g in present]
            p_values = part["p_value"].dropna() if "p_value" in part else pd.Series(dtype=float)
            rows.append({"segment": segment, "span": where.get(segment, ""), "metric": metric, "cells": cells,
                         "p": p_text(p_values.iloc[0]) if len(p_values) else ""})
    return {"groups": present, "rows": rows}


def quality_rows(summaries: list[dict], limit: int = QUALITY_ROWS) -> tuple[list[dict], int]:
    """Per-recording rows, the lowest face share first, at most ``limit``; and how many recordings there are."""
    def share(summary: dict) -> float:
        value = summary.get("face_share")
        return float(value) if isinstance(value, (int, float)) else -1.0

    ordered = sorted(summaries, key=lambda s: (share(s), s["respondent"]))[:limit]
    rows = [{
        "respondent": s["respondent"],
        "groups": ", ".join(f"{k}={v}" for k, v in (s.get("groups") or {}).items()),
        "recording": str(s.get("recording", "")),
        "offset": number(s.get("offset_s"), 2), "duration": number(s.get("duration_s"), 1),
        "frames": (f"{s['frames']} of {s['frames_expected']} (cut short?)" if s.get("ended_early")
                   else s.get("frames", "")),
        "with_face": s.get("frames_with_face", ""),
        "face_share": f"{share(s):.1%}" if share(s) >= 0 else "", "fps": number(s.get("fps"), 1),
        "processing": number(s.get("processing_s"), 1),
        "low": 0 <= share(s) < 0.8 or bool(s.get("ended_early")),
    } for s in ordered]
    return rows, len(summaries)
