"""`python -m labyrinth_tui` runs the same CLI as the `labyrinth` script."""

from __future__ import annotations

from labyrinth_tui.cli import main

if __name__ == "__main__":
    main()
