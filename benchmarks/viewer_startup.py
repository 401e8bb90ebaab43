"""Driver for the viewer start-up benchmark: ``diascan view --demo`` with timestamps.

Builds the window exactly as :func:`diascan.qt.app.run_viewer` does (same loader, models and
signals) and prints one JSON line of seconds since ``$DIASCAN_BENCH_T0`` (the parent's
``time.time()`` just before it started this process; default: this script's start):

* ``imported``: Qt, pyqtgraph and the window module imported;
* ``window_painted``: the empty window shown and painted;
* ``usable``: data loaded (pipeline without scoring), frames and table painted;
* ``scored``: every detection rescored with the default model, table updated;
* ``stage_start``: when each loading stage (load, template, detect, match, display) started.

Run: ``QT_QPA_PLATFORM=offscreen python benchmarks/viewer_startup.py [--small]``.
"""

from __future__ import annotations

import json
import os
import sys
import time

T0 = float(os.environ.get("DIASCAN_BENCH_T0") or time.time())
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def since() -> float:
    return time.time() - T0


def main() -> int:
    small = "--small" in sys.argv[1:]
    marks: dict[str, float] = {}
    from diascan.inputs import demo_loader
    from diascan.models.locate import model_choices
    from diascan.qt.app import get_app
    from diascan.qt.qt_main_window import QtMainWindow

    marks["imported"] = since()
    app = get_app()
    win = QtMainWindow()
    win.show_errors_as_dialogs = False
    specs, default = model_choices()
    win.set_models(specs, default)
    win.show()
    app.processEvents()
    win.grab()
    marks["window_painted"] = since()

    def loaded() -> None:
        app.processEvents()
        win.grab()  # frames and table painted: the window is usable
        marks["usable"] = since()
        if win.sources is not None and len(win.sources) and specs:
            if win.rescore_all() is None:
                app.quit()
        else:
            app.quit()

    def scored(_res=None) -> None:
        win.table.viewport().repaint()
        marks["scored"] = since()
        app.quit()

    def failed(msg: str) -> None:
        marks["error"] = msg  # type: ignore[assignment]
        app.quit()

    win.data_loaded.connect(loaded)
    win.rescore_done.connect(scored)
    win.load_failed.connect(failed)
    win.error_shown.connect(failed)
    stage_start: dict[str, float] = {}
    job = win.load(demo_loader(small=small))
    # When each loading stage started (seconds since T0): where the wait before "usable" goes.
    job.progress.connect(lambda stage, _f, _m: stage_start.setdefault(stage, since()))
    app.exec()
    win.wait_idle()
    marks["n_sources"] = len(win.sources) if win.sources is not None else 0
    marks["stage_start"] = stage_start  # type: ignore[assignment]
    print(json.dumps(marks))
    win.close()
    return 0 if "error" not in marks else 1


if __name__ == "__main__":
    sys.exit(main())
