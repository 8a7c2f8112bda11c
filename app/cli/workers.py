"""Several worker processes on one port, reloaded in place on SIGHUP.

uvicorn's supervisor answers SIGHUP by replacing every worker, which cuts
the streams they serve after ``shutdown_grace``. Each of our workers reloads
its config itself on SIGHUP (routes, upstreams, keys; streams finish on the
old config), so the supervisor only passes the signal on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal

from uvicorn.supervisors import Multiprocess

logger = logging.getLogger(__name__)


class Supervisor(Multiprocess):
    def handle_hup(self) -> None:
        pids = [p.pid for p in self.processes if p.pid is not None]
        logger.info("SIGHUP: reloading the config in %d worker(s)", len(pids))
        for pid in pids:
            # One that exited meanwhile is replaced by the supervisor, reading the new file.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)
