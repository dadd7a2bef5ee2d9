"""`python -m jaxnets.cli ...` runs the `jaxnets` command."""
import sys

from jaxnets.cli import main

sys.exit(main())
