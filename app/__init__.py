"""die-hard: a transactional outbox from PostgreSQL to ClickHouse, as a Django service.

Deliberately empty: `python -m app.config.probe` must load neither Django nor Celery.
"""
