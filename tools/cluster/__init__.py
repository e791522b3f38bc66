"""Kind cluster and Nova release verbs: ``python -m tools.cluster up|deploy|status|logs|test|cleanup|down``.

Each verb is a plan (:mod:`tools.cluster.plan`, a list of commands computed from the rendered chart)
that :mod:`tools.cluster.runner` executes after checking its prerequisites. See docs/deployment-guide.md.
"""

from tools.cluster.cli import main

__all__ = ["main"]
