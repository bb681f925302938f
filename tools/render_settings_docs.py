"""Regenerate the settings table of docs/configuration.md from the field descriptions of
`Settings` (src/adapters/composition/settings.py).

Usage:
    python tools/render_settings_docs.py          # rewrite the table
    python tools/render_settings_docs.py --check  # exit 1 with a diff when the page is stale
"""

from __future__ import annotations

import sys

from devtools.docs.regions import main
from devtools.docs.settings_table import PAGE, REGION, render

if __name__ == "__main__":
    sys.exit(main(PAGE, REGION, render))
