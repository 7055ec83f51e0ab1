"""Storage adapters behind the small port in ``port.py``."""
