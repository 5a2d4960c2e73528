"""Talking to a Flink session cluster."""
