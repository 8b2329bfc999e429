"""gunicorn's settings for En Garde; gunicorn reads ``./gunicorn.conf.py`` by itself.

Its access log prints each request line, query string included: the logger below passes every
line through ``engarde.logfilters.RedactTokens``, so a ``?token=`` (Eventbrite and
Easy!Appointments can only authenticate that way) never reaches a log file. ``child_exit`` tells
the metrics client a worker is gone (multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``).
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


def child_exit(server, worker):
    """Multiprocess metrics (PROMETHEUS_MULTIPROC_DIR): a worker that exits leaves its counters
    in its files, which the scrape keeps summing; only its live gauges would need this, and we keep
    none, but the client asks for it."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
