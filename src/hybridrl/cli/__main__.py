"""``python -m hybridrl.cli``."""

from hybridrl.cli import main

main()
