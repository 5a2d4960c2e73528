"""The embedded default: the whole pipeline on one machine with real servers."""
