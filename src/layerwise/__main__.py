"""``python -m layerwise`` runs the CLI."""

from layerwise.cli import main

main()
