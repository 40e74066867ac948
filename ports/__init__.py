"""Interfaces the domain needs from the outside; adapters and plugins implement them."""
