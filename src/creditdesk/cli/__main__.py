"""`python -m creditdesk.cli` (tests and benchmarks start servers this way)."""

from creditdesk.cli import app

if __name__ == "__main__":
    app()
