"""The two renderers of a report's blocks: one self-contained HTML page (CSS inline, figures
as base64 PNG) and Markdown that refers to the PNGs saved beside it.

Blocks: ("h2", text), ("p", text), ("cards", [(label, value, note)]), ("table", header, rows),
("img", name, png, caption), ("details", title, header, rows)."""

import base64
import html

__all__ = ["render_html", "render_md"]


_CSS = """
body{font:15px/1.5 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;color:#1d2731;
 background:#f6f7f9;margin:0}
main{max-width:1040px;margin:0 auto;padding:28px 28px 60px;background:#fff;
 box-shadow:0 0 12px rgba(0,0,0,.06)}
h1{font-size:26px;margin:0 0 4px}
.sub{color:#5b6773;margin:0 0 20px}
h2{font-size:19px;margin:36px 0 10px;padding-bottom:4px;border-bottom:2px solid #e3e7ec}
.cards{display:grid;grid-template-columns:repeat(3,1fr);gap:12px}
.card{border:1px solid #e3e7ec;border-radius:8px;padding:10px 14px;background:#fbfcfd}
.card .l{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#5b6773}
.card .v{font-size:24px;font-weight:600;color:#1f5fa8}
.card .n{font-size:12.5px;color:#5b6773;min-height:1.2em}
.card .v.bad{color:#c0392b}
figure{margin:14px 0 18px}
figure img{max-width:100%;height:auto;display:block;border:1px solid #eef0f3}
figcaption{font-size:13.5px;color:#4a5661;margin-top:6px;max-width:900px}
table{border-collapse:collapse;margin:10px 0 8px;font-size:14px}
th,td{padding:5px 12px;border-bottom:1px solid #e3e7ec;text-align:left;vertical-align:top}
th{background:#f0f3f6;font-weight:600}
tr:nth-child(even) td{background:#fafbfc}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
details{margin-top:30px}
summary{cursor:pointer;font-weight:600}
"""


def _is_num(text):
    t = str(text).replace(",", "").replace("%", "").replace(" MHz", "")
    try:
        float(t)
        return True
    except ValueError:
        return False


def _text(t):
    return html.escape(t, quote=False)


def _html_table(header, rows):
    h = _text
    numeric = [bool(any(header)) and all(_is_num(r[k]) or r[k] in ("", "not run") for r in rows)
               for k in range(len(header))]
    cls = lambda k: " class=\"num\"" if numeric[k] else ""
    out = ["<table>"]
    if any(header):
        out.append("<tr>" + "".join(f"<th{cls(k)}>{h(str(c))}</th>"
                                    for k, c in enumerate(header)) + "</tr>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td{cls(k)}>{h(str(c))}</td>" for k, c in enumerate(r))
                   + "</tr>")
    return "".join(out) + "</table>"


def render_html(title, subtitle, blocks):
    h = _text
    out = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>{h(title)}</title><style>{_CSS}</style></head><body><main>",
           f"<h1>{h(title)}</h1><p class=\"sub\">{h(subtitle)}</p>"]
    for b in blocks:
        kind = b[0]
        if kind == "h2":
            out.append(f"<h2>{h(b[1])}</h2>")
        elif kind == "p":
            out.append(f"<p>{h(b[1])}</p>")
        elif kind == "cards":
            out.append("<div class=\"cards\">")
            for label, value, note in b[1]:
                bad = " bad" if value == "NO" else ""
                out.append(f"<div class=\"card\"><div class=\"l\">{h(label)}</div>"
                           f"<div class=\"v{bad}\">{h(value)}</div><div class=\"n\">{h(note)}</div>"
                           f"</div>")
            out.append("</div>")
        elif kind == "table":
            out.append(_html_table(b[1], b[2]))
        elif kind == "img":
            data = base64.b64encode(b[2]).decode()
            out.append(f"<figure><img alt=\"{html.escape(b[1])}\" src=\"data:image/png;base64,{data}\">"
                       f"<figcaption>{h(b[3])}</figcaption></figure>")
        elif kind == "details":
            out.append(f"<details><summary>{h(b[1])}</summary>{_html_table(b[2], b[3])}</details>")
    out.append("</main></body></html>\n")
    return "\n".join(out)


def _md_table(header, rows):
    cell = lambda c: str(c).replace("|", "\\|")
    header = [cell(c) for c in header] if any(header) else [" "] * len(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_md(title, subtitle, blocks, image_dir):
    out = [f"# {title}", "", subtitle, ""]
    for b in blocks:
        kind = b[0]
        if kind == "h2":
            out += [f"## {b[1]}", ""]
        elif kind == "p":
            out += [b[1], ""]
        elif kind == "cards":
            out += [_md_table(["", "", ""], [[f"**{label}**", value, note]
                                             for label, value, note in b[1]]), ""]
        elif kind == "table":
            out += [_md_table(b[1], b[2]), ""]
        elif kind == "img":
            out += [f"![{b[1]}]({image_dir}/{b[1]}.png)", "", f"*{b[3]}*", ""]
        elif kind == "details":
            out += [f"<details><summary>{b[1]}</summary>", "", _md_table(b[2], b[3]), "",
                    "</details>", ""]
    return "\n".join(out)
