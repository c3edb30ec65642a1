"""The web role's WSGI application (see app/config/gunicorn.py for how gunicorn serves it)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "app.config.settings")

application = get_wsgi_application()
