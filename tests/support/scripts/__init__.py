"""Programs that tests run as separate processes (`python -m tests.support.scripts.NAME`)."""
