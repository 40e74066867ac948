"""Implementations of the ports, and the composition root that wires them from settings."""
