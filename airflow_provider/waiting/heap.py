"""Keep the triggerer's start-up objects out of the garbage collector's full passes.

A triggerer process holds Airflow, its providers and their imports: several hundred thousand
long-lived objects (modules, classes, functions, configuration). A thousand waits polling in
that process allocate steadily, and every so often Python's collector makes a full pass over
every object in the process: 100-150 ms on a 2-core machine, during which no trigger runs and
the event loop stalls. The objects alive when the first wait starts are almost all of those
long-lived ones, so the first wait of a process moves them to the collector's permanent
generation (:func:`gc.freeze`, what Airflow's own DAG processor manager and executors do
before they fork). Later full passes walk only what was allocated since: a few milliseconds.

The cost: an object frozen here that later becomes garbage *in a reference cycle* is not
reclaimed (objects without cycles are still freed by reference counting as usual). That is
bounded by what the process held when the first wait started, and happens once per process.
``[mrsdeploy] freeze_triggerer_heap = False`` turns it off.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)

CONFIG_SECTION = "mrsdeploy"
CONFIG_KEY = "freeze_triggerer_heap"

_settled = False


def settle_heap_once() -> bool:
    """Freeze the objects alive now, the first time a wait starts in this process.

    Returns True when this call froze them. Later calls, and every call when the option is
    off, do nothing.
    """
    global _settled
    if _settled:
        return False
    _settled = True
    if not _enabled():
        return False
    before = gc.get_freeze_count()
    gc.freeze()
    log.debug(
        "Moved %d start-up objects out of the garbage collector's passes "
        "([%s] %s = False turns this off)",
        gc.get_freeze_count() - before,
        CONFIG_SECTION,
        CONFIG_KEY,
    )
    return True


def _enabled() -> bool:
    """``[mrsdeploy] freeze_triggerer_heap`` (default True). A value that is not a boolean
    keeps the default, with a warning that names it: a wait is no place to fail over it."""
    from airflow_provider.compat import conf

    try:
        return bool(conf.getboolean(CONFIG_SECTION, CONFIG_KEY, fallback=True))
    except Exception as error:  # Airflow's own error names the value it could not read
        log.warning(
            "Ignoring [%s] %s: %s; using the default (True)", CONFIG_SECTION, CONFIG_KEY, error
        )
        return True
