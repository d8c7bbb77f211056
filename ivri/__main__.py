"""``python -m ivri`` is the ``ivri`` command."""

from ivri.cli import main

main()
