"""Pictures and tables of a Program: the model summary and the graph diagram.

- `summary(program)` / `summary_rows(program)`: the Keras-like table.
- `build_drawing(program, fold=False)`: boxes, arrows and clusters, no format.
- `to_dot(drawing)`, `to_mermaid(drawing)`: the drawing as Graphviz or Mermaid text.
- `render(program, path, fold=False)`: write .dot, .mmd, .svg or .png by extension.
"""

from minispec.render.dot import to_dot
from minispec.render.drawing import Cluster, Drawing, DrawEdge, DrawNode, build_drawing
from minispec.render.mermaid import to_mermaid
from minispec.render.output import FORMATS, render
from minispec.render.summary import SummaryRow, summary, summary_rows

__all__ = [
    "FORMATS",
    "Cluster",
    "DrawEdge",
    "DrawNode",
    "Drawing",
    "SummaryRow",
    "build_drawing",
    "render",
    "summary",
    "summary_rows",
    "to_dot",
    "to_mermaid",
]
