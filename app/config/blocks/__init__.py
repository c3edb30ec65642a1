"""Blocks of settings, one per integration: each reads its variables through the one `env`
(app/config/env.py) and does nothing else, so a process can import just the blocks it needs."""
