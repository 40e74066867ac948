"""In-process adapters: the store for unit tests (the embedded shop runs Dramatiq in-process)."""
