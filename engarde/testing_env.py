"""pytest plugin (loaded with ``-p`` before pytest-django reads the settings).

Tests run with the embedded default's development keys unless the environment gives keys: the
settings refuse to start without them when DEBUG is off, and a test run is not a deployment.
Django still runs every test with DEBUG off.
"""

import os

os.environ.setdefault("DEBUG", "true")
