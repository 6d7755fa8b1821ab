"""The dashboard's HTML pages, rendered from run records (pure functions: records in, HTML out).

Escaping is the default: `esc` escapes any plain string and passes only `Html`, text this
module built from escaped parts. Tools' messages, tags, names and logs are never trusted.
The pages carry no script and fetch nothing: their CSS is inline and their charts are SVG
drawn here (charts.py), so they work on an air-gapped node.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from string import Template
from typing import Any
from urllib.parse import quote, urlencode

from agent.runs import charts
from agent.runs.model import Run, RunFilter, Sample

STATUSES = ("Claimed", "Validating", "Running", "Uploading", "Completed", "Failed", "Canceled")
LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")
REFRESH_RUN = 2  # seconds between reloads of an unfinished run's page
REFRESH_LIST = 5  # and of a listing that shows one

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#1d232a;padding:8px 16px}header a{color:#fff;font-weight:600}
main{padding:12px 16px;max-width:1200px}h1{font-size:20px;margin:8px 0}
h2{font-size:16px;margin:20px 0 6px}a{color:#1f5fa8;text-decoration:none}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #e3e6ea;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef0f3;font-weight:600}td.num{text-align:right;white-space:nowrap}
.badge{padding:1px 6px;border-radius:8px;color:#fff;white-space:nowrap}
.status-Completed{background:#2e7d32;fill:#2e7d32}.status-Failed{background:#c62828;fill:#c62828}
.status-Canceled{background:#757575;fill:#757575}.status-other{background:#1565c0;fill:#1565c0}
.level-ERROR{color:#c62828;font-weight:600}.level-WARN{color:#b26a00;font-weight:600}
.level-DEBUG{color:#757575}.tag{background:#eef0f3;border-radius:4px;padding:0 4px;margin:0 2px}
.chart{background:#fff;display:block;max-width:900px}.chart text{font-size:11px;fill:#444}
.axis{stroke:#999}.phase{fill:#1565c0}.line{fill:none;stroke:#1565c0;stroke-width:2}
.dot{fill:#1565c0}dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}
dt{color:#555}dd{margin:0}pre{background:#fff;padding:8px;overflow:auto;max-height:480px}
form{margin:8px 0}.empty{color:#757575}
"""

_SHELL = Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">$refresh
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title><style>$css</style></head>
<body><header><a href="/dashboard">istari-agent · runs</a></header>
<main>$body</main></body></html>
""")


class Html(str):
    """Text that is already HTML, built here from escaped parts."""

    __slots__ = ()


def esc(value: object) -> Html:
    """`value` as HTML: `Html` as it is, anything else escaped."""
    return value if isinstance(value, Html) else Html(escape(str(value)))


def page(title: str, body: Html, refresh: int | None = None) -> str:
    """A whole page; it reloads itself every `refresh` seconds when given."""
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return _SHELL.substitute(refresh=meta, title=esc(title), css=_CSS, body=body)


def problem_page(title: str, detail: str) -> str:
    """A page that says what went wrong (unknown run, bad filter)."""
    return page(title, Html(f"<h1>{esc(title)}</h1><p>{esc(detail)}</p>"))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> Html:
    """A table; each cell escaped unless it is `Html`; an empty-table note without rows."""
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        return Html('<p class="empty">None.</p>')
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return Html(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def status_class(status: str) -> str:
    """The CSS class of a status's colour (final ones have their own; the rest share one)."""
    return "status-" + (status if status in ("Completed", "Failed", "Canceled") else "other")


def status_badge(status: str) -> Html:
    return Html(f'<span class="badge {status_class(status)}">{esc(status)}</span>')


def run_href(run_id: str) -> str:
    return "/dashboard/runs/" + quote(run_id, safe="")


def link(href: str, text: object) -> Html:
    return Html(f'<a href="{esc(href)}">{esc(text)}</a>')


def progress(percent: float | None) -> Html:
    if percent is None:
        return Html("")
    shown = max(0.0, min(100.0, percent))
    return Html(f'<progress max="100" value="{shown:.0f}"></progress> {shown:.0f} %')


def took(run: Run, now: float) -> str:
    """How long the run took, or has taken so far."""
    spent = charts.duration((run.ended or now) - run.started)
    return spent if run.ended is not None else f"{spent} so far"


# -- the listing --------------------------------------------------------------------------------


def runs_page(runs: Sequence[Run], f: RunFilter, total: int, now: float) -> str:
    """One page of runs: a filter form, a chart of their durations, a table, paging links."""
    unfinished = any(r.ended is None for r in runs)
    durations = charts.bars(
        [
            charts.Bar(
                f"{r.function} ({r.status})",
                (r.ended or now) - r.started,
                status_class(r.status),
                run_href(r.id),
            )
            for r in reversed(runs)
        ],
        "durations of the runs listed",
    )
    rows = [
        (status_badge(r.status), link(run_href(r.id), r.function), when(r.started),
         took(r, now), progress(r.progress), r.module_version, r.job_id)
        for r in runs
    ]  # fmt: skip
    body = Html(
        f"<h1>Runs</h1>{_filter_form(f)}<p>{total} run{'s' if total != 1 else ''}"
        f"{esc(_filter_words(f))}.</p><h2>Durations</h2>{durations}"
        + table(("Status", "Function", "Started", "Duration", "Progress", "Version", "Job"), rows)
        + _pages(f, total)
    )
    return page("Runs", body, REFRESH_LIST if unfinished else None)


def _filter_words(f: RunFilter) -> str:
    words = [f" with status {f.status}" if f.status else ""]
    words.append(f" matching {f.keyword!r}" if f.keyword else "")
    return "".join(words)


def _filter_form(f: RunFilter) -> Html:
    listed = ("", *STATUSES) if f.status in (None, *STATUSES) else ("", *STATUSES, f.status)
    options = "".join(
        f'<option value="{esc(s)}"{" selected" if s == (f.status or "") else ""}>'
        f"{esc(s or 'any')}</option>"
        for s in listed
    )
    return Html(
        '<form method="get" action="/dashboard"><label>Status <select name="status">'
        f'{options}</select></label> <label>Keyword <input name="keyword" '
        f'value="{esc(f.keyword or "")}"></label> <button>Show</button></form>'
    )


def _pages(f: RunFilter, total: int) -> Html:
    kept = {k: v for k, v in (("status", f.status), ("keyword", f.keyword)) if v}
    if f.limit != RunFilter.limit:
        kept["limit"] = str(f.limit)
    links = []
    if f.page > 1:
        links.append(link("/dashboard?" + urlencode({**kept, "page": f.page - 1}), "← newer"))
    if f.offset + f.limit < total:
        links.append(link("/dashboard?" + urlencode({**kept, "page": f.page + 1}), "older →"))
    return Html(f"<p>{' · '.join(links)}</p>" if links else "")


# -- one run ------------------------------------------------------------------------------------


def run_page(run: Run, samples: Sequence[Sample], log_tail: str | None, now: float) -> str:
    """A run: its facts, a timeline of its phases, entries, outputs, inputs, resources, log."""
    spans = [
        charts.Span(s.phase, s.started - run.started, (s.ended or now) - run.started)
        for s in run.steps
    ]
    body = Html(
        f"<h1>{esc(run.function)} {status_badge(run.status)}</h1>{_facts(run, now)}"
        f"<h2>Phases</h2>{charts.timeline(spans, 'phases of this run')}"
        f"<h2>Log entries</h2>{_entries(run)}"
        f"<h2>Outputs</h2>{_outputs(run)}<h2>Inputs</h2>{_inputs(run)}"
        f"<h2>Resource use</h2>{_resources(run, samples)}"
        f"<h2>Log file (its end)</h2>{_log(log_tail)}"
    )
    return page(f"{run.function} · {run.status}", body, REFRESH_RUN if run.ended is None else None)


def _log(tail: str | None) -> Html:
    return Html(f"<pre>{esc(tail)}</pre>" if tail else '<p class="empty">None kept.</p>')


def _facts(run: Run, now: float) -> Html:
    api = "/runs/" + quote(run.id, safe="")
    facts: list[tuple[str, object]] = [
        ("Run", run.id), ("Job", run.job_id), ("Module", f"{run.module} {run.module_version}"),
        ("Agent", run.agent_id), ("Started", when(run.started)),
        ("Ended", when(run.ended) if run.ended is not None else "not yet"),
        ("Duration", took(run, now)), ("Progress", progress(run.progress)),
        ("Outcome", ", ".join(str(x) for x in (run.reason, run.message) if x)),
        ("Exit code", "" if run.exit_code is None else run.exit_code),
        ("Tool used", _used(run)),
        ("As data", Html(" · ".join(link(api + p, n) for p, n in (
            ("", "JSON"), ("/log", "log"), ("/steps.csv", "steps.csv"), ("/plot", "plot data"))))),
    ]  # fmt: skip
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts if v != "")
    return Html(f"<dl>{rows}</dl>")


def _used(run: Run) -> str:
    parts = [f"wall {charts.duration(run.wall_s)}" if run.wall_s is not None else ""]
    parts.append(f"CPU {charts.duration(run.cpu_s)}" if run.cpu_s is not None else "")
    parts.append(f"peak RSS {run.peak_rss_kb / 1024:.1f} MiB" if run.peak_rss_kb else "")
    return ", ".join(p for p in parts if p)


def _tags(tags: dict[str, Any]) -> Html:
    return Html(
        "".join(f'<span class="tag">{esc(k)}={esc(json.dumps(v))}</span>' for k, v in tags.items())
    )


def _level(level: str) -> Html:
    css = level if level in LEVELS else "other"
    return Html(f'<span class="level-{css}">{esc(level)}</span>')


def _entries(run: Run) -> Html:
    rows = [
        (f"+{charts.duration(max(0.0, e.time - run.started))}",
         _level(e.level),
         e.message, _tags(e.tags), progress(e.progress))
        for e in run.entries
    ]  # fmt: skip
    return table(("At", "Level", "Message", "Tags", "Progress"), rows)


def _outputs(run: Run) -> Html:
    keys = ("name", "kind", "resource_id", "file_name")
    return table(
        ("Name", "Kind", "Artifact id", "File"),
        [[o.get(k, "") for k in keys] for o in run.outputs],
    )


def _inputs(run: Run) -> Html:
    keys = ("name", "type", "file", "size", "sha256")
    return table(
        ("Name", "Type", "File", "Size (bytes)", "SHA-256"),
        [["" if i.get(k) is None else i[k] for k in keys] for i in run.inputs],
    )


def _resources(run: Run, samples: Sequence[Sample]) -> Html:
    cpu = [(s.time - run.started, s.cpu_percent) for s in samples]
    rss = [(s.time - run.started, s.rss_kb / 1024) for s in samples]
    return Html(
        "<h3>CPU (% of one core)</h3>"
        + charts.line(cpu, "CPU use over time", "%")
        + "<h3>Resident memory</h3>"
        + charts.line(rss, "resident memory over time", "MiB")
    )
