"""gunicorn's settings for En Garde; gunicorn reads ``./gunicorn.conf.py`` by itself.

Its access log prints each request line, query string included: the logger below passes every
line through ``engarde.logfilters.RedactTokens``, so a ``?token=`` (Eventbrite and
Easy!Appointments can only authenticate that way) never reaches a log file.
"""

import os
import sys

from gunicorn.glogging import Logger

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from engarde.logfilters import RedactTokens  # noqa: E402


class RedactingLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            log.addFilter(RedactTokens())


logger_class = RedactingLogger
