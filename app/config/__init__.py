"""The wiring: settings, the one `env`, the Celery app, URLs, WSGI, gunicorn and the exec probes.

Everything here may import the domain packages (app.users > app.outbox > app.core >
app.clickhouse); none of them imports this package (import-linter holds both, see pyproject).
"""
