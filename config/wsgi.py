"""The one WSGI entry point (gunicorn config.wsgi:application): Django, behind the slow-body guard."""

import os

from django.core.wsgi import get_wsgi_application

from core.slow_body import SlowBodyGuard

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = SlowBodyGuard(get_wsgi_application())
