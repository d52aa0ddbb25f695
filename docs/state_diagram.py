"""The state diagram of a return, drawn as SVG from the decision table (for ``generate.py``).

Why SVG written at build time: the site must work offline and opened from disk, so no
diagram library is fetched from a CDN, and a picture made by hand would drift from
``decisions.TABLE``. The arrows between states are the table's (one per source and
target, labelled with the outcomes that take it); only the ways into the machine that
are no call to WeChat Pay (create, approve) are declared here. The positions of the
boxes are a layout choice: a state the table gains without a place here stops the build.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from django_wxpay_profitsharing import decisions
from django_wxpay_profitsharing.decisions import Outcome
from django_wxpay_profitsharing.states import ReturnState

START = "start"
#: Centre of each box (and of the start dot), in SVG units.
LAYOUT: dict[str, tuple[float, float]] = {
    START: (20, 110),
    ReturnState.DRAFT: (170, 110),
    ReturnState.PENDING: (480, 110),
    ReturnState.SUCCEEDED: (840, 110),
    ReturnState.REJECTED: (170, 300),
    ReturnState.PROCESSING: (480, 300),
    ReturnState.FAILED: (840, 300),
}
#: Transitions that are no call to WeChat Pay, so not in ``decisions.TABLE``.
AROUND_THE_TABLE = [
    (START, ReturnState.DRAFT, "create"),
    (START, ReturnState.PENDING, "create and submit"),
    (ReturnState.DRAFT, ReturnState.PENDING, "Submit to WeChat Pay"),
]
#: Where the label of an arrow sits: along it (0 start, 1 end), moved by (dx, dy), its
#: text anchored at its start, middle or end, so many outcomes a line. The two diagonals
#: between the rows cross, so their labels keep to their own ends.
LABEL_AT: dict[tuple[str, str], tuple[float, float, float, str, int]] = {
    (ReturnState.PENDING, ReturnState.FAILED): (0.35, 6, -8, "start", 2),
    (ReturnState.PROCESSING, ReturnState.SUCCEEDED): (0.22, 0, -14, "middle", 2),
    (ReturnState.PENDING, ReturnState.REJECTED): (0.5, -14, 0, "end", 2),
    (ReturnState.PENDING, ReturnState.PROCESSING): (0.4, 10, 0, "start", 1),
}
DEFAULT_LABEL = (0.5, 0, -8, "middle", 2)
#: More outcomes than this on one arrow are counted, not listed.
LISTED = 4
BOX_W, BOX_H = 150, 40
WIDTH, HEIGHT = 930, 400
FINAL = {ReturnState.SUCCEEDED, ReturnState.FAILED, ReturnState.REJECTED}


@dataclass
class Arrow:
    source: str
    target: str
    outcomes: list[Outcome]
    label: str = ""


def arrows() -> list[Arrow]:
    """One arrow per (source, target) of ``decisions.TABLE``, plus the ways in."""
    found: dict[tuple[str, str], list[Outcome]] = {}
    for (state, _step, outcome), decision in decisions.TABLE.items():
        outcomes = found.setdefault((state, decision.state or state), [])
        if outcome not in outcomes:
            outcomes.append(outcome)
    table = [
        Arrow(source, target, sorted(outcomes, key=list(Outcome).index))
        for (source, target), outcomes in found.items()
    ]
    return [Arrow(s, t, [], label) for s, t, label in AROUND_THE_TABLE] + table


def label_lines(arrow: Arrow, per_line: int = 2) -> list[str]:
    if arrow.label:
        return [arrow.label]
    names = [o.value for o in arrow.outcomes]
    if arrow.source == arrow.target and len(names) > LISTED:
        return [f"{len(names)} outcomes: again later,", "the same out_return_no"]
    if len(names) > LISTED:
        return [f"{len(names)} outcomes"]
    return [", ".join(names[i : i + per_line]) for i in range(0, len(names), per_line)]


def _edge_point(centre: tuple[float, float], towards: tuple[float, float]) -> tuple[float, float]:
    """Where the line from a box's centre towards ``towards`` leaves the box."""
    (x, y), (tx, ty) = centre, towards
    dx, dy = tx - x, ty - y
    scale = min(
        (BOX_W / 2) / abs(dx) if dx else math.inf, (BOX_H / 2) / abs(dy) if dy else math.inf
    )
    return x + dx * scale, y + dy * scale


def _text(x: float, y: float, lines: list[str], anchor: str = "middle") -> str:
    spans = "".join(
        f'<tspan x="{x:.0f}" dy="{0 if n == 0 else 13}">{escape(line)}</tspan>'
        for n, line in enumerate(lines)
    )
    return f'<text class="label a-{anchor}" x="{x:.0f}" y="{y:.0f}">{spans}</text>'


def _straight(arrow: Arrow) -> str:
    a, b = LAYOUT[arrow.source], LAYOUT[arrow.target]
    start = a if arrow.source == START else _edge_point(a, b)
    end = _edge_point(b, a)
    if arrow.source == START and arrow.target != ReturnState.DRAFT:
        # Over the draft box: a curve from the dot to the top of the target.
        end = (b[0] - BOX_W / 4, b[1] - BOX_H / 2)
        control = ((a[0] + end[0]) / 2, a[1] - 100)
        path = (
            f"M{start[0]:.0f},{start[1]:.0f} "
            f"Q{control[0]:.0f},{control[1]:.0f} {end[0]:.0f},{end[1]:.0f}"
        )
        lines = label_lines(arrow)
        return f'<path class="arrow" d="{path}"/>' + _text(control[0], a[1] - 56, lines)
    at, dx, dy, anchor, per_line = LABEL_AT.get((arrow.source, arrow.target), DEFAULT_LABEL)
    lines = label_lines(arrow, per_line)
    x = start[0] + (end[0] - start[0]) * at + dx
    y = start[1] + (end[1] - start[1]) * at + dy
    if dy < 0:
        y -= 13 * (len(lines) - 1)  # above the line: the last line sits on it
    elif dy == 0:
        y -= 6 * (len(lines) - 1)  # beside it: centred
    label = _text(x, y, lines, anchor)
    path = f"M{start[0]:.0f},{start[1]:.0f} L{end[0]:.0f},{end[1]:.0f}"
    return f'<path class="arrow" d="{path}"/>' + label


def _loop(arrow: Arrow) -> str:
    """A loop over (pending) or under (processing) the box."""
    x, y = LAYOUT[arrow.source]
    up = y < HEIGHT / 2
    edge = y - BOX_H / 2 if up else y + BOX_H / 2
    reach = -48 if up else 48
    path = (
        f"M{x + 20:.0f},{edge:.0f} C{x + 30:.0f},{edge + reach:.0f} "
        f"{x + 90:.0f},{edge + reach:.0f} {x + 60:.0f},{edge:.0f}"
    )
    lines = label_lines(arrow)
    label_y = edge + reach - (13 * len(lines) if up else -16)
    return f'<path class="arrow" d="{path}"/>' + _text(x + 60, label_y, lines)


def _box(state: str) -> str:
    x, y = LAYOUT[state]
    if state == START:
        return f'<circle class="start" cx="{x}" cy="{y}" r="7"/>'
    css = "state final" if state in FINAL else "state"
    return (
        f'<rect class="{css}" x="{x - BOX_W / 2:.0f}" y="{y - BOX_H / 2:.0f}" '
        f'width="{BOX_W}" height="{BOX_H}" rx="8"/>'
        f'<text class="name" x="{x}" y="{y + 5}">{escape(str(state))}</text>'
    )


STYLE = """
  .state { fill: #eef4fb; stroke: #2980b9; stroke-width: 1.5; }
  .final { fill: #f3f8ee; stroke: #4c8a2e; stroke-width: 2.5; }
  .start { fill: #333; }
  .name { font: bold 14px sans-serif; text-anchor: middle; fill: #222; }
  .arrow { fill: none; stroke: #555; stroke-width: 1.3; marker-end: url(#head); }
  .label { font: 11px monospace; fill: #333; }
  .a-start { text-anchor: start; }
  .a-middle { text-anchor: middle; }
  .a-end { text-anchor: end; }
"""


def state_diagram_svg() -> str:
    """The whole SVG document; fails when the table has a state with no place."""
    drawn = arrows()
    unplaced = {s for a in drawn for s in (a.source, a.target)} - set(LAYOUT)
    if unplaced:
        raise SystemExit(f"docs/state_diagram.py: give {sorted(unplaced)} a place in LAYOUT")
    parts = [_loop(a) if a.source == a.target else _straight(a) for a in drawn]
    boxes = [_box(state) for state in LAYOUT]
    return (
        "<!-- Generated by docs/generate.py from decisions.TABLE: do not edit, "
        "run `make docs`. -->\n"
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" '
        'aria-label="The states of a return and what moves a return between them">\n'
        f"<style>{STYLE}</style>\n"
        '<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#555"/></marker></defs>\n' + "\n".join(parts + boxes) + "\n</svg>\n"
    )
