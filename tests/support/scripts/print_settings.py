"""Print the named Django settings of this process as one JSON object.

python tests/support/scripts/print_settings.py NAME...
"""

import json
import sys

import django
from django.conf import settings

django.setup()
values = {name: getattr(settings, name) for name in sys.argv[1:]}
print(json.dumps(values, default=str))  # noqa: T201
