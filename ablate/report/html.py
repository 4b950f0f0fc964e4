"""index.html and README.md from one document model, so both always list the same things.

The page is self-contained: inline CSS, relative links, no scripts or fonts from elsewhere, so a
report folder can be zipped, mailed or opened from a USB stick.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from ablate.report.tables import Table, markdown_escape

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;
     padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{padding:.25em .7em;border-bottom:1px solid #ddd}th{border-bottom:2px solid #444;text-align:left}
td.r,th.r{text-align:right}td.c,th.c{text-align:center}
caption{caption-side:top;text-align:left;font-size:.9em;color:#444;padding-bottom:.4em;max-width:1000px}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.9em;color:#444}
.meta{color:#555;font-size:.9em}.note{color:#7a4a00}.links a{margin-right:1em}
nav a{margin-right:1em}
"""


@dataclass
class FigureRef:
    """One figure in all its formats; the first PNG or SVG is shown, every format is linked."""

    caption: str
    files: list[str]

    @property
    def shown(self) -> str | None:
        for ext in (".png", ".svg"):
            for f in self.files:
                if f.endswith(ext):
                    return f
        return None


@dataclass
class Section:
    title: str
    anchor: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    figures: list[FigureRef] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: tuple[list[str], list[list[str]]] | None = None  # a plain header + rows listing


@dataclass
class Document:
    title: str
    meta: list[tuple[str, str]]
    sections: list[Section]


def _html_table(table: Table) -> str:
    cls = {"l": "", "c": ' class="c"', "r": ' class="r"'}
    out = [f"<table><caption><b>{escape(table.title)}.</b> {escape(table.caption)}</caption>", "<thead><tr>"]
    out += [f"<th{cls[a]}>{escape(h)}</th>" for h, a in zip(table.header, table.align)]
    out.append("</tr></thead><tbody>")
    for row in table.rows:
        out.append("<tr>" + "".join(f"<td{cls[a]}>{escape(c)}</td>" for c, a in zip(row, table.align)) + "</tr>")
    out.append("</tbody></table>")
    out += [f'<p class="meta">{escape(n)}</p>' for n in table.notes]
    return "\n".join(out)


def _plain_rows(header: list[str], rows: list[list[str]]) -> str:
    out = ["<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows]
    out.append("</tbody></table>")
    return "\n".join(out)


def _links(links: list[tuple[str, str]]) -> str:
    return (
        '<p class="links">'
        + " ".join(f'<a href="{escape(href)}">{escape(label)}</a>' for label, href in links)
        + "</p>"
    )


def render_html(doc: Document) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(doc.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{escape(doc.title)}</h1>",
        '<p class="meta">' + "<br>".join(f"<b>{escape(k)}</b>: {escape(v)}" for k, v in doc.meta) + "</p>",
        "<nav>" + " ".join(f'<a href="#{escape(s.anchor)}">{escape(s.title)}</a>' for s in doc.sections) + "</nav>",
    ]
    for s in doc.sections:
        parts.append(f'<h2 id="{escape(s.anchor)}">{escape(s.title)}</h2>')
        parts += [f"<p>{escape(p)}</p>" for p in s.paragraphs]
        for table in s.tables:
            parts.append(_html_table(table))
        if s.rows is not None:
            parts.append(_plain_rows(*s.rows))
        if s.links:
            parts.append(_links(s.links))
        for fig in s.figures:
            shown = fig.shown
            body = f'<img src="{escape(shown)}" alt="{escape(fig.caption)}">' if shown else ""
            formats = " ".join(f'<a href="{escape(f)}">{escape(f.rsplit(".", 1)[-1])}</a>' for f in fig.files)
            parts.append(f"<figure>{body}<figcaption>{escape(fig.caption)} [{formats}]</figcaption></figure>")
        parts += [f'<p class="note">{escape(n)}</p>' for n in s.notes]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _md_rows(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(markdown_escape(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(markdown_escape(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(doc: Document) -> str:
    lines = [f"# {markdown_escape(doc.title)}", ""]
    lines += [f"- **{markdown_escape(k)}**: {markdown_escape(v)}" for k, v in doc.meta]
    for s in doc.sections:
        lines += ["", f"## {markdown_escape(s.title)}", ""]
        for p in s.paragraphs:
            lines += [markdown_escape(p), ""]
        for table in s.tables:
            lines += [table.markdown()]
        if s.rows is not None:
            lines += _md_rows(*s.rows) + [""]
        if s.links:
            lines += [" · ".join(f"[{markdown_escape(label)}]({href})" for label, href in s.links), ""]
        for fig in s.figures:
            if fig.shown:
                lines.append(f"![{markdown_escape(fig.caption)}]({fig.shown})")
            lines += [
                f"*{markdown_escape(fig.caption)}* ("
                + ", ".join(f"[{f.rsplit('.', 1)[-1]}]({f})" for f in fig.files)
                + ")",
                "",
            ]
        for n in s.notes:
            lines += [f"> {markdown_escape(n)}", ""]
    return "\n".join(lines).rstrip() + "\n"
