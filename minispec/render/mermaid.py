"""Write a `Drawing` as a Mermaid flowchart (`flowchart TB`).

Node ids are generated (`n0`, `n1`, ...; never a Mermaid keyword such as
`end`); labels are quoted and every character outside a small safe set is
written as a Mermaid entity code (`#91;` for `[`, `#quot;` for `"`), so names
and ops with brackets, quotes, `|`, `<`, `>` or `#` cannot break the syntax.
Boxes, clusters and arrows follow the DOT rendering: shared instances and block
calls are subgraphs, skip edges dotted, loss edges thick.
"""

from __future__ import annotations

import string

from minispec.render.drawing import Cluster, Drawing

_SAFE = set(string.ascii_letters + string.digits + " ,.:=_+-/*×·…()[]{}")

_CLASSES = {
    "input": "fill:#dbeafe,stroke:#2563eb,color:#0f172a",
    "layer": "fill:#ffffff,stroke:#64748b,color:#0f172a",
    "shared": "fill:#ede9fe,stroke:#7c3aed,color:#0f172a",
    "head": "fill:#dcfce7,stroke:#15803d,stroke-width:2px,color:#0f172a",
    "loss": "fill:#fee2e2,stroke:#b91c1c,color:#0f172a",
    "folded": "fill:#ffedd5,stroke:#c2410c,stroke-width:2px,color:#0f172a",
    "legend": "fill:#f8fafc,stroke:#cbd5e1,stroke-dasharray:3 3,color:#334155,text-align:left",
}
_CLUSTER_STYLE = {
    "shared": "fill:#f5f3ff,stroke:#7c3aed,stroke-width:2px",
    "block": "fill:none,stroke:#94a3b8,stroke-dasharray:4 3",
    "repeat": "fill:none,stroke:#fb923c",
}


def escape(text: str) -> str:
    """Label text with every unsafe character as a Mermaid entity code."""
    out = []
    for char in text:
        if char in _SAFE:
            out.append(char)
        elif char == '"':
            out.append("#quot;")
        else:
            out.append(f"#{ord(char)};")
    return "".join(out)


def _title(text: str) -> str:
    """A YAML-safe title for the front matter (entity codes are not decoded there)."""
    kept = "".join(char for char in text if char.isalnum() or char in " _-.")
    return kept.strip() or "minispec"


def _text(lines: list[str]) -> str:
    return '"' + "<br/>".join(escape(line) for line in lines) + '"'


def to_mermaid(drawing: Drawing) -> str:
    """Mermaid flowchart text, top to bottom, with the legend as a last note box."""
    ids = {node.id: f"n{index}" for index, node in enumerate(drawing.nodes)}
    cluster_ids = {cluster.id: f"c{index}" for index, cluster in enumerate(drawing.clusters)}
    lines = ["---", f"title: {_title(drawing.title)}", "---", "flowchart TB"]

    def box(node, indent: str) -> str:
        rows = [escape(line) for line in ([node.name] if node.name else []) + node.lines[:1]]
        rows += ["#160;" * (len(line) - len(line.lstrip(" ")) + 2) + escape(line.lstrip(" ")) for line in node.body]
        rows += [escape(line) for line in node.lines[1:]]
        label = "<br/>".join(rows)
        opening, closing = ('["', '"]') if node.kind != "loss" else ('[/"', '"/]')
        return f"{indent}{ids[node.id]}{opening}{label}{closing}:::{node.kind}"

    def cluster(item: Cluster, indent: str) -> None:
        lines.append(f"{indent}subgraph {cluster_ids[item.id]}[{_text([item.label])}]")
        clusters, nodes = drawing.children(item.id)
        for child in clusters:
            cluster(child, indent + "  ")
        lines.extend(box(node, indent + "  ") for node in nodes)
        lines.append(f"{indent}end")

    clusters, nodes = drawing.children(None)
    for item in clusters:
        cluster(item, "  ")
    lines.extend(box(node, "  ") for node in nodes)
    for edge in drawing.edges:
        arrow = {"normal": "-->", "skip": "-.->", "loss": "==>"}[edge.style]
        label = f"|{_text([edge.label])}|" if edge.label else ""
        lines.append(f"  {ids[edge.source]} {arrow}{label} {ids[edge.target]}")
    if drawing.legend:
        lines.append(f"  legend[{_text(drawing.legend)}]:::legend")
    for kind, style in _CLASSES.items():
        lines.append(f"  classDef {kind} {style}")
    for item in drawing.clusters:
        lines.append(f"  style {cluster_ids[item.id]} {_CLUSTER_STYLE[item.kind]}")
    return "\n".join(lines) + "\n"
