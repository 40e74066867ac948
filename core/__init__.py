"""The payment domain: pure Python, standard library only."""
