"""Child process of ``test_qt_save_failures.test_file_size_limit_in_the_real_window``: the real
window offscreen on a real visit, a file-size limit (``RLIMIT_FSIZE``) set mid-session, labels
and notes typed with key presses until a save fails; then closing the window (Save As under the
limit fails and the question comes back; with the limit lifted Save As works). Prints one JSON
line of what happened.

Usage: ``python -m tests._fsize_child OUT_DIR VISIT_JSON``.
"""

from __future__ import annotations

import json
import resource
import signal
import sys
import time
from pathlib import Path


def wait(app, cond, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        app.processEvents()
        time.sleep(0.01)


def labels_of(session) -> dict[str, list]:
    v = session.current
    return {str(sid): [None if v.labels.label(sid) is None else v.labels.label(sid).value,
                       v.labels.note(sid)]
            for sid in v.labels.ids if v.labels.label(sid) is not None or v.labels.note(sid)}


def main() -> None:
    # What the diascan command does for itself (cli.main): a file-size limit must give an
    # error (EFBIG), not kill the process with SIGXFSZ.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    out = Path(sys.argv[1])
    files = {k: Path(v) for k, v in json.loads(sys.argv[2]).items()}
    from PyQt6.QtCore import Qt
    from PyQt6.QtTest import QTest
    from PyQt6.QtWidgets import QMessageBox

    from diascan.inputs import files_loader
    from diascan.qt.app import get_app
    from diascan.qt.qt_main_window import QtMainWindow
    from diascan.qt.qt_session_link import QtSessionLink
    from diascan.session import load_session
    from tests._qt_dialogs import answer, then_save_as

    app = get_app()
    w = QtMainWindow()
    w.show()
    path = out / "s.json"
    link = QtSessionLink(w, session_path=path)
    link.start_new(files_loader(files))  # the real load job
    wait(app, lambda: link.ctl is not None)
    ctl = link.ctl

    def activate() -> None:
        w.activateWindow()
        wait(app, lambda: app.activeWindow() is w)

    activate()
    w.select_source(w.source_ids()[0])
    w.table.setFocus()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + 3000, hard))
    typed = 0
    while not ctl.guard.failing and typed < 12:
        QTest.keyClick(w.table, Qt.Key.Key_E)
        QTest.keyClicks(ctl.note_edit, f"note {typed} " + "x" * 1000)
        QTest.keyClick(ctl.note_edit, Qt.Key.Key_Return)
        QTest.keyClick(w.table, Qt.Key.Key_R)  # label real, on to the next unlabelled
        typed += 1
        activate()  # a dialog may have taken the focus
    dialogs = [b for b in w._dialogs if b.windowTitle() == "Labels not saved"]
    result = {"typed": typed, "error": str(ctl.autosave.last_error), "dialogs": len(dialogs),
              "in_memory": len(labels_of(ctl.session)),
              "on_disk": len(labels_of(load_session(path))),
              "in_memory_labels": labels_of(ctl.session)}
    rescued = out / "rescued.json"
    questions: list[str] = []

    def second(box: QMessageBox) -> None:
        questions.append(box.text())
        result["save_as_error"] = " ".join(b.text() for b in w._dialogs
                                           if b.windowTitle() == "Save As failed")
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # the user freed space
        then_save_as(rescued)(box)

    def first(box: QMessageBox) -> None:
        questions.append(box.text())
        answer(QMessageBox, second)
        then_save_as(rescued)(box)  # fails under the limit: the question comes back

    answer(QMessageBox, first)
    result["closed"] = w.close()
    result["questions"] = len(questions)
    result["rescued"] = labels_of(load_session(rescued)) if rescued.exists() else None
    print(json.dumps(result))


if __name__ == "__main__":
    main()
