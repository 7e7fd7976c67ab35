"""Leaving a process that has used Temporal's native runtime.

temporalio's Rust core can abort the interpreter while Python finalizes, after all work
is done (sdk-python issue 300). Entry points stop their workers and servers first, then
call `exit_process`, which flushes everything and exits without finalizing.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn


def exit_process(code: int) -> NoReturn:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
