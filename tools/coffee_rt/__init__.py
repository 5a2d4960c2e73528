"""coffee-rt: the local stack, its CLI and the pieces every other package shares."""

__version__ = "0.1.0"
