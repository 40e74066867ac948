"""In-process adapters: for unit tests and for the embedded one-process shop."""
