"""``python -m kscc_traffic`` runs the command line."""
from .cli import main

main()
