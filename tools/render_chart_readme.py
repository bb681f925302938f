"""Regenerate the values table of the chart's README (deploy/helm/bytemark-ticket-cache/README.md)
from values.yaml (defaults and the comment above each key) and values.schema.json (types, limits).

Usage:
    python tools/render_chart_readme.py          # rewrite the table
    python tools/render_chart_readme.py --check  # exit 1 with a diff when the README is stale
"""

from __future__ import annotations

import sys

from devtools.docs.chart_values import PAGE, REGION, render
from devtools.docs.regions import main

if __name__ == "__main__":
    sys.exit(main(PAGE, REGION, render))
