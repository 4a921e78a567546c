"""The batch status page as HTML: one self-contained document, every value escaped.

Names, ids and error messages come from the address and from the server; each is escaped
with :func:`html.escape` before it is written, so none can add markup or script. The page
carries its own small style sheet and no script at all (its Content-Security-Policy forbids
both scripts and any outside resource).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from airflow_provider.api.identifiers import shown
from airflow_provider.ui.fetch import PAGE_SECONDS, BatchView, PageError

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1a202c; }
h1 { font-size: 1.4rem; }
dl { display: grid; grid-template-columns: max-content auto; gap: .3rem 1rem; }
dt { font-weight: 600; }
table { border-collapse: collapse; margin-top: 1rem; }
th, td { border: 1px solid #cbd5e0; padding: .25rem .6rem; text-align: left; vertical-align: top; }
.Complete, .ok { color: #276749; } .Failed, .failed { color: #c53030; }
progress { width: 16rem; }
"""

#: Said when the rows came too slowly to be listed in the page's time.
_LATE_ROWS = (
    f"The server sent no more rows within {PAGE_SECONDS:g} s; reload the page to try again."
)


def _document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def render_batch(view: BatchView) -> str:
    """The page for a batch: what it is, its state and counts, and each listed row's status.

    :param view: what :func:`airflow_provider.ui.fetch.fetch_batch` read.
    """
    state = view.state.value
    percent = 100 if view.total == 0 else round(100 * view.completed / view.total)
    facts = [
        ("State", f'<span id="state" class="{escape(state)}">{escape(state)}</span>'),
        (
            "Rows done",
            f'<span id="completed">{view.completed}</span> of <span id="total">{view.total}</span>'
            f' <progress max="100" value="{percent}">{percent}%</progress>',
        ),
        ("Service", f"{escape(view.service_name)} {escape(view.service_version)}"),
        ("Batch", f'<code id="batch-id">{escape(view.batch_id)}</code>'),
        ("Connection", f"<code>{escape(view.connection_id)}</code>"),
    ]
    body = [
        f"<h1>Batch {escape(view.batch_id)}</h1>",
        "<dl>" + "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts) + "</dl>",
    ]
    if view.rows:
        listed = len(view.rows)
        note = (
            f"The first {listed} rows of {view.total}." if view.rows_cut else f"All {listed} rows."
        )
        if view.rows_late:
            note += f" {_LATE_ROWS}"
        body.append(
            f'<h2>Rows</h2><p id="row-summary">{note} Succeeded: '
            f'<span id="succeeded">{view.succeeded}</span>, failed: '
            f'<span id="failed">{view.failed}</span>.</p>'
        )
        lines = []
        for row in view.rows:
            outcome = "succeeded" if row.success else "failed"
            css = "ok" if row.success else "failed"
            lines.append(
                f'<tr><td>{row.index}</td><td class="{css}">{outcome}</td>'
                f"<td>{escape(row.error or '')}</td></tr>"
            )
        body.append(
            '<table id="rows"><thead><tr><th>Row</th><th>Outcome</th><th>Error</th></tr>'
            f"</thead><tbody>{''.join(lines)}</tbody></table>"
        )
    elif view.rows_late:
        body.append(f'<p id="row-summary">{_LATE_ROWS}</p>')
    elif not view.state.is_terminal:
        body.append("<p>Each row's outcome is listed here once the batch is complete.</p>")
    return _document(f"mrsdeploy batch {view.batch_id}", "".join(body))


def render_error(error: PageError) -> str:
    """The page when the batch cannot be shown: what went wrong, and each refused value.

    :param error: the reason.
    """
    body = [f"<h1>{escape(error.title)}</h1>", f'<p id="message">{escape(error.message)}</p>']
    if error.details:
        items = "".join(
            f"<li>{escape(name)}: {escape(reason)}</li>" for name, reason in error.details.items()
        )
        body.append(f"<ul>{items}</ul>")
    return _document(error.title, "".join(body))


def refused_values_message(values: Mapping[str, object]) -> str:
    """The message for an address with unusable values, quoting them escaped and cut short.

    :param values: ``{value name: value}`` of the refused values.
    """
    quoted = ", ".join(f"{name} {shown(value)}" for name, value in values.items())
    return f"The address names a value the page cannot use: {quoted}."
