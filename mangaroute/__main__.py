"""``python -m mangaroute`` runs the command line."""

from mangaroute.cli import main

raise SystemExit(main())
