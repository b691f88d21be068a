"""Local development tooling: AWS emulator launcher (see local/emulator.py)."""
