"""A job's report as one self-contained HTML page: the model (``JobReport``) and its rendering.

Pure: no AWS, no file system. ``pipeline_cli/report_data.py`` builds the model from what the
pipeline already wrote (the job record, its summaries, its quarantine) or from a local
validation; this module only lays it out.

The page opens with no network and runs no script: the styles are inline, the charts are inline
SVG. Every value from a source (a transaction id, a quarantined field, a column name) is
HTML-escaped, with control and bidirectional characters shown as escapes, and long ones cut.
Amounts are the exact decimal strings the pipeline wrote; floats only place the bars. Each
figure carries a stable hook (``data-figure``, with ``data-key`` and the machine value in
``data-value``) for tests and scripts.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

MAX_TEXT = 300  # characters of a source's value shown; the rest is counted, not shown
MAX_CAUSE = 5000  # characters of a failure's cause (the job record keeps up to 20,000)
MAX_LABEL = 28  # characters of a bar's label inside a chart (the table beside it holds it whole)
MAX_DATE_BARS = 62  # booking dates drawn in the chart (the table holds every date)

# C0/C1 controls and the bidirectional overrides: a hostile value cannot reorder or hide the page's text.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True, kw_only=True)
class CurrencyFigure:
    currency: str
    rows: int
    total: str  # exact decimal text, as the pipeline wrote it


@dataclass(frozen=True, kw_only=True)
class DateFigure:
    booking_date: str
    rows: int
    currencies: tuple[CurrencyFigure, ...]


@dataclass(frozen=True, kw_only=True)
class RejectLine:
    line: int | None
    transaction_id: str | None
    reasons: tuple[str, ...]
    details: tuple[str, ...]
    record: str | None = None  # the quarantined record (or raw text) as compact JSON


@dataclass(frozen=True, kw_only=True)
class StageSpan:
    stage: str
    label: str
    started: str  # ISO 8601, UTC
    offset_ms: int  # from the job's first timestamp
    duration_ms: int
    failed: bool = False


@dataclass(frozen=True, kw_only=True)
class Failure:
    stage: str
    error: str
    cause: str


@dataclass(frozen=True, kw_only=True)
class JobLink:
    """Another job this one is tied to: the job it corrects, its correction, the job holding its bytes."""

    relation: str
    job_id: str
    status: str | None = None
    at: str | None = None


@dataclass(frozen=True, kw_only=True)
class Lineage:
    source: str
    version_id: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    format: str | None = None
    code_version: str | None = None
    plan_id: str | None = None
    chunks: int | None = None
    manifest: str | None = None
    quarantine: str | None = None
    committed_at: str | None = None
    snapshots: tuple[tuple[str, str], ...] = ()  # (table, snapshot id)


@dataclass(frozen=True, kw_only=True)
class JobReport:
    title: str  # "Job <id>" or "File <path>"
    job_id: str | None
    verdict: str
    verdict_meaning: str  # the badge's meaning, in words
    why: str
    received: int | None
    valid: int | None
    loaded: int | None  # None: nothing was loaded (a local check, a job that never reached load)
    rejected: int | None
    threshold: str | None  # the largest accepted rejected share, 0..1, as written on the job
    rejected_share: str | None  # percent, for reading only
    reasons: tuple[tuple[str, int], ...]
    columns: tuple[tuple[str, int], ...] | None  # None: not known (say why in columns_note)
    columns_note: str | None
    valid_totals: tuple[CurrencyFigure, ...]
    rejected_totals: tuple[CurrencyFigure, ...]
    dates: tuple[DateFigure, ...] | None  # None: not available (say why in dates_note)
    dates_note: str | None
    first_rejects: tuple[RejectLine, ...]
    more_rejects: int
    unknown_columns: tuple[str, ...]
    lineage: Lineage
    stages: tuple[StageSpan, ...]
    failure: Failure | None
    links: tuple[JobLink, ...]
    notes: tuple[str, ...]  # what the report could not check or find
    generated_at: str


# ------------------------------------------------------------------ text
def visible(value: object, limit: int = MAX_TEXT) -> str:
    """A value's text with controls and bidirectional marks shown as \\uXXXX, cut at ``limit``."""
    text = _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", str(value))
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit} more characters)"
    return text


def esc(value: object, limit: int = MAX_TEXT) -> str:
    return html.escape(visible(value, limit), quote=True)


def count_text(value: int) -> str:
    return f"{value:,}"


def duration_text(milliseconds: int) -> str:
    if milliseconds < 1000:
        return f"{milliseconds} ms"
    seconds = milliseconds // 1000
    if seconds < 60:
        return f"{milliseconds / 1000:.1f} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _figure(tag: str, figure: str, text: str, *, key: str | None = None, value: object = None, cls: str = "") -> str:
    """An element holding one figure: ``text`` is already HTML; ``value`` the machine value."""
    attributes = f' data-figure="{esc(figure)}"'
    if key is not None:
        attributes += f' data-key="{esc(key)}"'
    if value is not None:
        attributes += f' data-value="{esc(value)}"'
    if cls:
        attributes += f' class="{cls}"'
    return f"<{tag}{attributes}>{text}</{tag}>"


# ------------------------------------------------------------------ charts
@dataclass(frozen=True, kw_only=True)
class Bar:
    label: str
    value: int  # drawn to scale
    text: str  # the value as read


LABEL_WIDTH, BAR_AREA, VALUE_WIDTH, ROW = 210, 330, 150, 26
FILL, STROKE = "#2b5a87", "#1d3f60"
# A failed stage's bar: hatched and labelled "(failed)", so that colour is never the only sign.
_HATCH = (
    '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
    '<rect width="6" height="6" fill="#f6d5d1"/><line x1="0" y1="0" x2="0" y2="6" stroke="#9f1d12" stroke-width="3"/>'
    "</pattern></defs>"
)


def _bar(*, number: int, x: float, length: float, label: str, text: str, title: str, fill: str = FILL) -> str:
    """One row of a chart: its label left of the axis, its bar, its value in text after the bar, a <title>."""
    y = 4 + number * ROW
    shown = label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"
    return (
        f'<g class="bar"><title>{esc(title)}</title>'
        f'<text class="bar-label" x="{LABEL_WIDTH - 10}" y="{y + 17}" text-anchor="end">{esc(shown)}</text>'
        f'<rect x="{x:.2f}" y="{y + 4}" width="{length:.2f}" height="{ROW - 8}" fill="{fill}"'
        f' stroke="{STROKE}" stroke-width="{1 if length else 0}"/>'
        f'<text class="bar-value" x="{x + length + 6:.2f}" y="{y + 17}">{esc(text)}</text></g>'
    )


def _svg(*, chart_id: str, title: str, rows: Sequence[str], defs: str = "") -> str:
    width, height = LABEL_WIDTH + BAR_AREA + VALUE_WIDTH, ROW * len(rows) + 8
    return (
        f'<svg class="chart" id="{chart_id}" role="img" aria-labelledby="{chart_id}-title"'
        f' viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f'<title id="{chart_id}-title">{esc(title)}</title>{defs}{"".join(rows)}</svg>'
    )


def bar_chart(*, chart_id: str, title: str, bars: Sequence[Bar]) -> str:
    """Horizontal bars from one axis, to the scale of the largest (a non-zero value is at least 2 px)."""
    if not bars:
        return ""
    top = max(bar.value for bar in bars) or 1
    rows = [
        _bar(
            number=number,
            x=LABEL_WIDTH,
            length=max(BAR_AREA * bar.value / top, 2.0) if bar.value else 0.0,
            label=bar.label,
            text=bar.text,
            title=f"{bar.label}: {bar.text}",
        )
        for number, bar in enumerate(bars)
    ]
    return _svg(chart_id=chart_id, title=title, rows=rows)


def timeline_chart(*, chart_id: str, stages: Sequence[StageSpan]) -> str:
    """The stages on one time axis: each bar starts when its stage started and is as long as it ran."""
    if not stages:
        return ""
    total = max(stage.offset_ms + stage.duration_ms for stage in stages) or 1
    rows = []
    for number, stage in enumerate(stages):
        text = duration_text(stage.duration_ms) + (" (failed)" if stage.failed else "")
        rows.append(
            _bar(
                number=number,
                x=LABEL_WIDTH + BAR_AREA * stage.offset_ms / total,
                length=max(BAR_AREA * stage.duration_ms / total, 2.0),
                label=stage.label,
                text=text,
                title=f"{stage.label}: started {stage.started}, {text}",
                fill="url(#hatch)" if stage.failed else FILL,
            )
        )
    return _svg(chart_id=chart_id, title="Stage timeline", rows=rows, defs=_HATCH)


# ------------------------------------------------------------------ sections
def _section(section_id: str, heading: str, body: str) -> str:
    return f'<section id="{section_id}"><h2>{esc(heading)}</h2>{body}</section>'


def _empty(text: str) -> str:
    return f'<p class="empty">{esc(text)}</p>'


def _caption(text: str) -> str:
    return f'<p class="caption">{esc(text)}</p>'


def _header(report: JobReport) -> str:
    badge = _figure("span", "verdict", esc(report.verdict), value=report.verdict, cls=f"badge {_tone(report.verdict)}")
    subject = esc(report.title)
    return (
        f'<header class="top"><div class="head-line">{badge}<h1>{subject}</h1></div>'
        f'<p class="meaning">{esc(report.verdict)} means: {esc(report.verdict_meaning)}</p>'
        f'{_figure("p", "verdict-reason", esc(report.why), cls="why")}</header>'
    )


def _tone(verdict: str) -> str:
    return {
        "LOADED": "good",
        "ACCEPTED": "good",
        "REJECTED": "bad",
        "FAILED": "bad",
        "RESENT": "neutral",
        "SUPERSEDED": "neutral",
    }.get(verdict, "running")


def _cards(report: JobReport) -> str:
    cards = [
        ("rows-received", "Rows received", report.received),
        ("rows-valid", "Rows valid", report.valid),
        ("rows-loaded", "Rows loaded", report.loaded),
        ("rows-rejected", "Rows rejected", report.rejected),
    ]
    items = []
    for figure, label, value in cards:
        shown = count_text(value) if value is not None else "—"
        note = "" if value is not None else '<div class="card-note">not recorded</div>'
        items.append(
            f'<div class="card"><div class="card-label">{label}</div>'
            f"{_figure('div', figure, shown, value='' if value is None else value, cls='card-value')}{note}</div>"
        )
    share = _figure(
        "div", "rejected-share", esc(report.rejected_share or "—"), value=report.rejected_share or "", cls="card-value"
    )
    threshold = _figure("span", "threshold", esc(report.threshold or "—"), value=report.threshold or "")
    items.append(
        f'<div class="card"><div class="card-label">Rejected share</div>{share}'
        f'<div class="card-note">threshold: at most {threshold}</div></div>'
    )
    return f'<section class="cards" aria-label="Counts">{"".join(items)}</section>'


def _failure(failure: Failure | None) -> str:
    if failure is None:
        return ""
    return (
        '<section class="failure"><h2>Failure</h2><dl>'
        f"<dt>Stage</dt><dd>{_figure('span', 'failed-stage', esc(failure.stage))}</dd>"
        f"<dt>Error</dt><dd>{_figure('code', 'error', esc(failure.error))}</dd>"
        f"<dt>Cause</dt><dd>{_figure('pre', 'error-cause', esc(failure.cause or '(none recorded)', MAX_CAUSE))}</dd>"
        "</dl></section>"
    )


def _links(links: Sequence[JobLink]) -> str:
    if not links:
        return ""
    rows = []
    for link in links:
        status = f" ({esc(link.status)})" if link.status else ""
        at = f", {esc(link.at)}" if link.at else ""
        rows.append(
            f"<li>{esc(link.relation)}: {_figure('code', 'linked-job', esc(link.job_id), key=link.relation)}"
            f"{status}{at}</li>"
        )
    return f'<section class="links"><h2>Related jobs</h2><ul>{"".join(rows)}</ul></section>'


def _notes(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{esc(note)}</li>" for note in notes)
    return f'<section class="notes" aria-label="Notes"><h2>Notes</h2><ul>{items}</ul></section>'


def _count_table(*, figure: str, heading: str, rows: Sequence[tuple[str, int]], total: int | None) -> str:
    body = "".join(
        f"<tr><th scope='row'>{esc(key)}</th>"
        f"{_figure('td', figure, count_text(value), key=key, value=value, cls='num')}"
        f"{_share_cell(value, total)}</tr>"
        for key, value in rows
    )
    return (
        f'<table class="figures"><thead><tr><th scope="col">{esc(heading)}</th><th scope="col" class="num">Rows</th>'
        f'<th scope="col" class="num">Share of rejects</th></tr></thead><tbody>{body}</tbody></table>'
    )


def _share_cell(value: int, total: int | None) -> str:
    if not total:
        return "<td class='num'>—</td>"
    return f"<td class='num'>{Decimal(100 * value) / total:.1f} %</td>"  # a reading aid beside the exact count


def _reasons(report: JobReport) -> str:
    if not report.reasons:
        return '<section><h2>Rejects by reason</h2><p class="empty">No row was rejected.</p></section>'
    bars = [Bar(label=code, value=n, text=count_text(n)) for code, n in report.reasons]
    chart = bar_chart(chart_id="chart-reasons", title="Rejected rows by reason", bars=bars)
    table = _count_table(figure="reason-count", heading="Reason", rows=report.reasons, total=report.rejected)
    note = "<p class='caption'>A row rejected for several reasons counts once under each.</p>"
    return _section("rejects-by-reason", "Rejects by reason", f'{note}<div class="pair">{chart}{table}</div>')


def _columns(report: JobReport) -> str:
    heading = "Rejects by column"
    if report.columns is None:
        return _section("rejects-by-column", heading, _empty(report.columns_note or "Not known."))
    if not report.columns:
        return _section("rejects-by-column", heading, _empty("No row was rejected."))
    bars = [Bar(label=name, value=n, text=count_text(n)) for name, n in report.columns]
    chart = bar_chart(chart_id="chart-columns", title="Rejected rows by column", bars=bars)
    table = _count_table(figure="column-count", heading="Column", rows=report.columns, total=report.rejected)
    caption = (
        "<p class='caption'>Rows whose quarantine details name the column; a row counts once per column it fails. "
        "“(whole row)”: the row could not be read into columns.</p>"
    )
    if report.columns_note:
        caption += f"<p class='caption'>{esc(report.columns_note)}</p>"
    return _section("rejects-by-column", heading, f'{caption}<div class="pair">{chart}{table}</div>')


def _totals(report: JobReport) -> str:
    def table(figure: str, heading: str, figures: Sequence[CurrencyFigure]) -> str:
        if not figures:
            return f"<div><h3>{heading}</h3>{_empty('None.')}</div>"
        body = "".join(
            f"<tr><th scope='row'>{esc(f.currency)}</th>"
            f"{_figure('td', figure + '-rows', count_text(f.rows), key=f.currency, value=f.rows, cls='num')}"
            f"{_figure('td', figure + '-total', esc(f.total), key=f.currency, value=f.total, cls='num amount')}</tr>"
            for f in figures
        )
        return (
            f"<div><h3>{heading}</h3><table class='figures'><thead><tr><th scope='col'>Currency</th>"
            f"<th scope='col' class='num'>Rows</th><th scope='col' class='num'>Sum of amounts</th></tr></thead>"
            f"<tbody>{body}</tbody></table></div>"
        )

    valid = table("valid", "Valid rows", report.valid_totals)
    rejected = table("rejected", "Rejected rows with a readable amount and currency", report.rejected_totals)
    caption = _caption("Exact sums of the rows' unsigned amounts, as validation counted them.")
    return _section("totals", "Control totals per currency", f'{caption}<div class="pair">{valid}{rejected}</div>')


def _dates(report: JobReport) -> str:
    heading = "Rows and totals per booking date"
    if report.dates is None:
        return _section("dates", heading, _empty(report.dates_note or "Not available."))
    if not report.dates:
        return _section("dates", heading, _empty("No valid row."))
    shown = report.dates[:MAX_DATE_BARS]
    bars = [Bar(label=d.booking_date, value=d.rows, text=count_text(d.rows)) for d in shown]
    chart = bar_chart(chart_id="chart-dates", title="Valid rows per booking date", bars=bars)
    caption = "<p class='caption'>Valid rows; booking date is the UTC date of booked_at.</p>"
    if len(report.dates) > len(shown):
        caption += _caption(f"The chart shows the first {len(shown)} of {len(report.dates)} dates; the table, all.")
    if report.dates_note:
        caption += _caption(report.dates_note)
    table = (
        "<table class='figures'><thead><tr><th scope='col'>Booking date</th><th scope='col'>Currency</th>"
        "<th scope='col' class='num'>Rows</th><th scope='col' class='num'>Sum of amounts</th></tr></thead>"
        f"<tbody>{''.join(_date_rows(date) for date in report.dates)}</tbody></table>"
    )
    return _section("dates", heading, f'{caption}<div class="pair">{chart}{table}</div>')


def _date_rows(date: DateFigure) -> str:
    """A date's rows: the date (with its rows) spanning one row per currency."""
    rows = _figure("span", "date-rows", f"{count_text(date.rows)} rows", key=date.booking_date, value=date.rows)
    date_cell = f"<th scope='rowgroup' rowspan='{len(date.currencies)}'>{esc(date.booking_date)}<br>{rows}</th>"
    lines = []
    for number, money in enumerate(date.currencies):
        key = f"{date.booking_date} {money.currency}"
        count = _figure("td", "date-currency-rows", count_text(money.rows), key=key, value=money.rows, cls="num")
        total = _figure("td", "date-currency-total", esc(money.total), key=key, value=money.total, cls="num amount")
        lines.append(f"<tr>{date_cell if number == 0 else ''}<td>{esc(money.currency)}</td>{count}{total}</tr>")
    return "".join(lines)


def _reject_lines(report: JobReport) -> str:
    heading = "First rejected lines"
    if not report.first_rejects:
        return _section("rejected-lines", heading, _empty("None."))
    more = report.more_rejects
    said = f"… and {count_text(more)} more rejected lines." if more else "These are all the rejected lines."
    table = (
        "<table class='figures rejects'><thead><tr><th scope='col' class='num'>Line</th>"
        "<th scope='col'>Transaction id</th><th scope='col'>Reasons</th><th scope='col'>Details</th></tr></thead>"
        f"<tbody>{''.join(_reject_row(entry) for entry in report.first_rejects)}</tbody></table>"
    )
    return _section("rejected-lines", heading, table + _figure("p", "more-rejects", said, value=more))


def _reject_row(entry: RejectLine) -> str:
    line = _figure("td", "reject-line", esc("—" if entry.line is None else entry.line), value=entry.line, cls="num")
    tid = "<span class='none'>(none)</span>"
    if entry.transaction_id is not None:
        tid = _figure("code", "reject-transaction-id", esc(entry.transaction_id))
    reasons = " ".join(f"<span class='tag'>{esc(code)}</span>" for code in entry.reasons)
    details = "".join(f"<li>{esc(detail)}</li>" for detail in entry.details)
    record = f"<details><summary>record</summary><pre>{esc(entry.record)}</pre></details>" if entry.record else ""
    return (
        f"<tr class='reject'>{line}<td class='tid'>{tid}</td><td>{reasons}</td>"
        f"<td><ul class='details'>{details}</ul>{record}</td></tr>"
    )


def _unknown_columns(report: JobReport) -> str:
    if not report.unknown_columns:
        return ""
    names = ", ".join(f"<code>{esc(name)}</code>" for name in report.unknown_columns)
    return f"<p class='caption'>Columns outside the contract (kept in <code>extra</code>): {names}</p>"


def _lineage(report: JobReport) -> str:
    lineage = report.lineage
    fields = [
        ("source", "Source", lineage.source),
        ("version-id", "Version", lineage.version_id),
        ("sha256", "SHA-256", lineage.sha256),
        ("source-bytes", "Bytes", count_text(lineage.bytes) if lineage.bytes is not None else None),
        ("format", "Format", lineage.format),
        ("code-version", "Code version", lineage.code_version),
        ("plan-id", "Plan", f"{lineage.plan_id} ({lineage.chunks} chunks)" if lineage.plan_id else None),
        ("manifest", "Manifest", lineage.manifest),
        ("quarantine", "Quarantine", lineage.quarantine),
        ("committed-at", "Committed at", lineage.committed_at),
    ]
    items = "".join(
        f"<dt>{label}</dt><dd>{_figure('code', figure, esc(value))}</dd>"
        for figure, label, value in fields
        if value is not None
    )
    for table, snapshot in lineage.snapshots:
        items += f"<dt>Snapshot of {esc(table)}</dt><dd>{_figure('code', 'snapshot', esc(snapshot), key=table)}</dd>"
    for link in report.links:
        items += f"<dt>{esc(link.relation)}</dt><dd><code>{esc(link.job_id)}</code></dd>"
    return f'<section id="lineage"><h2>Lineage</h2><dl class="lineage">{items}</dl>{_stages(report.stages)}</section>'


def _stages(stages: Sequence[StageSpan]) -> str:
    if not stages:
        return ""
    chart = timeline_chart(chart_id="chart-stages", stages=stages)
    body = "".join(
        f"<tr><th scope='row'>{esc(s.label)}{' (failed)' if s.failed else ''}</th>"
        f"<td><code>{esc(s.started)}</code></td>"
        f"{_figure('td', 'stage-duration', duration_text(s.duration_ms), key=s.stage, value=s.duration_ms, cls='num')}"
        "</tr>"
        for s in stages
    )
    table = (
        "<table class='figures'><thead><tr><th scope='col'>Stage</th><th scope='col'>Started (UTC)</th>"
        f"<th scope='col' class='num'>Duration</th></tr></thead><tbody>{body}</tbody></table>"
    )
    return f'<h3>Stages</h3><div class="pair">{chart}{table}</div>'


STYLE = """
:root{--ink:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#f6f8fa;--bar:#2b5a87}
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif;
color:var(--ink);background:#fff;font-size:15px;line-height:1.5}
code,pre,.amount,.tid{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:14px}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:0}
.top{background:var(--bg);border-bottom:1px solid var(--line);padding:24px 40px}
.head-line{display:flex;align-items:center;gap:16px;flex-wrap:wrap}
h1{font-size:24px;margin:0;overflow-wrap:anywhere}
h2{font-size:18px;margin:0 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:16px 0 6px}
.badge{display:inline-block;padding:4px 12px;border-radius:4px;font-weight:700;letter-spacing:.04em;
border:2px solid currentColor}
.badge.good{background:#dafbe1;color:#0f5323}.badge.bad{background:#ffebe9;color:#8a1c12}
.badge.neutral{background:#ddf4ff;color:#0a3069}.badge.running{background:#fff8c5;color:#4d2d00}
.meaning{margin:8px 0 0;color:var(--muted)}.why{margin:4px 0 0;font-size:16px}
main{padding:8px 40px 40px;max-width:1240px}
section{margin-top:28px}
.cards{display:grid;grid-template-columns:repeat(5,1fr);gap:16px}
.card{border:1px solid var(--line);border-radius:6px;padding:12px 16px}
.card-label{color:var(--muted);font-size:13px}.card-value{font-size:24px;font-weight:600}
.card-note{font-size:13px;color:var(--muted)}
.pair{display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap}
.chart{flex:none;max-width:100%;height:auto}
.bar-label,.bar-value{font-size:12px;fill:var(--ink)}
table.figures{border-collapse:collapse;min-width:280px}
.figures th,.figures td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
.figures thead th{background:var(--bg);font-size:13px}
.num{text-align:right!important;font-variant-numeric:tabular-nums}
.sub{color:var(--muted);font-size:12px;font-weight:400}
.caption,.empty{color:var(--muted);margin:4px 0 8px}
.tag{display:inline-block;border:1px solid var(--line);border-radius:3px;padding:0 4px;margin:1px;font-size:12px}
.details{margin:0;padding-left:16px}.none{color:var(--muted)}
.rejects{width:100%}.rejects td.tid{max-width:260px;overflow-wrap:anywhere}
.failure{border:2px solid #8a1c12;border-radius:6px;padding:12px 16px;background:#fff5f4}
.failure dt,.lineage dt{font-weight:600}
dl{display:grid;grid-template-columns:220px 1fr;gap:4px 16px;margin:0}dd{margin:0;overflow-wrap:anywhere}
.notes{border-left:4px solid #9a6700;padding-left:12px}
footer{color:var(--muted);font-size:13px;padding:16px 40px;border-top:1px solid var(--line)}
"""


def _judged(report: JobReport) -> list[str]:
    return [
        _reasons(report),
        _columns(report),
        _totals(report),
        _dates(report),
        _reject_lines(report),
        _unknown_columns(report),
    ]


def _not_judged() -> str:
    return _section("rows", "Rows", _empty("The job ended before its rows were judged: nothing was counted."))


def _origin(report: JobReport) -> str:
    if report.job_id is None:
        return "a local validation of the file (<code>pipeline validate</code>): nothing was sent or loaded"
    return "the job record, its summaries and its quarantine (<code>pipeline report</code>)"


def render_html(report: JobReport) -> str:
    """The whole page: no script, no external reference, every source value escaped."""
    sections = [
        _cards(report),
        _failure(report.failure),
        _links(report.links),
        _notes(report.notes),
        *(_judged(report) if report.rejected is not None else [_not_judged()]),
        _lineage(report),
    ]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # The page asks for nothing from anywhere: a hostile value that escaped would still load nothing.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{esc(report.title)} — {esc(report.verdict)}</title><style>{STYLE}</style></head><body>"
        f"{_header(report)}<main>{''.join(sections)}</main>"
        f"<footer>Written {esc(report.generated_at)} from {_origin(report)}.</footer></body></html>\n"
    )
