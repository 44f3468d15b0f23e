"""``python -m mangaroute.sidecar``: the ``mangaroute serve`` command on its own."""

from mangaroute.sidecar.cli import main

raise SystemExit(main())
