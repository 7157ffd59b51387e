"""minispec: a small declarative language for neural-network experiments.

From Python (a notebook), see docs/api.md:

    import minispec
    spec = minispec.load("specs/saux.mdl", epochs=3)
    results = spec.run(trials=2)
"""

from minispec.api import Picture, Results, Spec, load, loads, open_run

__all__ = ["Picture", "Results", "Spec", "load", "loads", "open_run"]
