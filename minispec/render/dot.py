"""Write a `Drawing` as Graphviz DOT, top to bottom.

Every label is an HTML-like label, so `&`, `<`, `>` and quotes in names are
escaped as entities (`html.escape`) and brackets and `|` need nothing; ids are
quoted DOT strings with `\\` and `"` escaped.
"""

from __future__ import annotations

import html

from minispec.render.drawing import Cluster, Drawing, DrawNode

FONT = "Helvetica"

# kind -> (fill, border, extra attributes)
_NODE_STYLE: dict[str, tuple[str, str, str]] = {
    "input": ("#dbeafe", "#2563eb", 'shape=box, style="rounded,filled"'),
    "layer": ("#ffffff", "#64748b", 'shape=box, style="rounded,filled"'),
    "shared": ("#ede9fe", "#7c3aed", 'shape=box, style="rounded,filled"'),
    "head": ("#dcfce7", "#15803d", 'shape=box, style="rounded,filled,bold"'),
    "loss": ("#fee2e2", "#b91c1c", 'shape=box, style="filled"'),
    "folded": ("#ffedd5", "#c2410c", 'shape=box, style="rounded,filled", peripheries=2'),
}
_CLUSTER_STYLE: dict[str, str] = {
    "shared": 'style="rounded,filled,bold", fillcolor="#f5f3ff", color="#7c3aed", fontcolor="#5b21b6"',
    "block": 'style="rounded,dashed", color="#94a3b8", fontcolor="#475569"',
    "repeat": 'style="rounded", color="#fb923c", fontcolor="#c2410c"',
}
_EDGE_STYLE: dict[str, str] = {
    "normal": 'color="#475569"',
    "skip": 'style=dashed, color="#2563eb", constraint=false',
    "loss": 'style=dotted, color="#b91c1c", arrowhead=vee, weight=0',
}


def quote(text: str) -> str:
    """A DOT quoted string (ids, plain attribute values)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def escape(text: str) -> str:
    """Text for an HTML-like label: entities for & < > " ', and non-breaking leading spaces."""
    stripped = text.lstrip(" ")
    return "&#160;" * (len(text) - len(stripped)) + html.escape(stripped, quote=True)


def _label(node: DrawNode) -> str:
    """One table row per line (rows space lines more evenly than <br/>)."""
    rows = []
    if node.name:
        rows.append(f"<b>{escape(node.name)}</b>")
    lines = list(node.lines)
    if lines:
        first = escape(lines.pop(0))
        rows.append(f'<font color="#c2410c"><b>{first}</b></font>' if node.kind == "folded" else first)
    if node.body:
        rows.append(_body(node.body))
    for line in lines:
        rows.append(f'<font point-size="9" color="#475569">{escape(line)}</font>')
    cells = "".join(f"<tr><td>{row}</td></tr>" for row in rows)
    return f'<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">{cells}</table>>'


def _body(lines: list[str]) -> str:
    """Left-aligned, indented lines as a table: indentation is empty cells, since
    not every SVG viewer gives leading non-breaking spaces their width."""
    depths = [(len(line) - len(line.lstrip(" "))) // 2 for line in lines]
    columns = max(depths) + 1
    rows = []
    for depth, line in zip(depths, lines):
        indent = '<td width="10"></td>' * depth
        text = f'<font point-size="9">{escape(line.strip())}</font>'
        rows.append(f'<tr>{indent}<td align="left" colspan="{columns - depth}">{text}</td></tr>')
    return f'<table border="0" cellborder="0" cellspacing="0" cellpadding="0">{"".join(rows)}</table>'


def _node_line(node: DrawNode, indent: str) -> str:
    fill, border, extra = _NODE_STYLE.get(node.kind, _NODE_STYLE["layer"])
    return f'{indent}{quote(node.id)} [label={_label(node)}, {extra}, fillcolor="{fill}", color="{border}"];'


def _cluster(drawing: Drawing, cluster: Cluster, indent: str) -> list[str]:
    # Graphviz draws a frame only around subgraphs whose name starts with "cluster".
    number = drawing.clusters.index(cluster)
    lines = [f"{indent}subgraph {quote(f'cluster_{number}')} {{"]
    inner = indent + "  "
    name, _, note = cluster.label.partition(" (")
    title = f'<b>{escape(name)}</b><br align="left"/>'
    if note:  # "extract (shared, 2 uses)": the note on a second, smaller line, so the frame's label stays narrow
        title += f'<font point-size="9">{escape(note.rstrip(")"))}</font><br align="left"/>'
    where = "b" if cluster.kind == "shared" else "t"  # the shared label below, clear of the arrows of its uses
    lines.append(f"{inner}label=<{title}>; labelloc={where}; labeljust=l; {_CLUSTER_STYLE[cluster.kind].replace(', ', '; ')};")
    clusters, nodes = drawing.children(cluster.id)
    for child in clusters:
        lines.extend(_cluster(drawing, child, inner))
    lines.extend(_node_line(node, inner) for node in nodes)
    lines.append(f"{indent}}}")
    return lines


def to_dot(drawing: Drawing) -> str:
    """Graphviz DOT text: inputs on top, losses at the bottom, the legend below."""
    lines = [
        f"digraph {quote(drawing.title)} {{",
        f'  graph [rankdir=TB, newrank=true, fontname="{FONT}", fontsize=11, nodesep=0.25, ranksep=0.3, '
        'pad=0.2, labelloc=b, labeljust=l];',
        f'  node [fontname="{FONT}", fontsize=10, margin="0.12,0.04", height=0.3, penwidth=1.2];',
        f'  edge [fontname="{FONT}", fontsize=9, arrowsize=0.6, fontcolor="#6d28d9"];',
    ]
    clusters, nodes = drawing.children(None)
    for cluster in clusters:
        lines.extend(_cluster(drawing, cluster, "  "))
    lines.extend(_node_line(node, "  ") for node in nodes)
    inputs = [n.id for n in nodes if n.kind == "input" and n.name]
    losses = [n.id for n in drawing.nodes if n.kind == "loss"]
    if inputs:
        lines.append("  { rank=min; " + " ".join(quote(i) + ";" for i in inputs) + " }")
    if losses:
        lines.append("  { rank=max; " + " ".join(quote(i) + ";" for i in losses) + " }")
    for edge in drawing.edges:
        attrs = [_EDGE_STYLE[edge.style]]
        if edge.label:
            attrs.append(f"label=<{escape(edge.label)}>")
        lines.append(f"  {quote(edge.source)} -> {quote(edge.target)} [{', '.join(attrs)}];")
    if drawing.legend:
        legend = '<br align="left"/>'.join(escape(line) for line in drawing.legend) + '<br align="left"/>'
        lines.append(f'  label=<<font point-size="9" color="#334155">{legend}</font>>;')
    lines.append("}")
    return "\n".join(lines) + "\n"
