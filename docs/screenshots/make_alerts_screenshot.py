"""Makes docs/screenshots/alerts-gallery-<W>x<H>.png: the real window (offscreen) on 40 Rubin
alerts written by tests/_alert_packets.py (Rubin's own schema and sample alert, cutouts made by
that code: no data of anyone else), two labelled, rescored with the bundled model.

Run from the repository: ``QT_QPA_PLATFORM=offscreen .venv/bin/python
docs/screenshots/make_alerts_screenshot.py 1920 1080``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests._alert_packets import write_synthetic_folder  # noqa: E402


def main(width: int, height: int) -> Path:
    from diascan.alerts.viewer import alerts_loader
    from diascan.models.locate import model_choices
    from diascan.qt.app import get_app
    from diascan.qt.qt_main_window import QtMainWindow
    from diascan.qt.qt_session_link import QtSessionLink

    app = get_app()
    tmp = Path(tempfile.mkdtemp(prefix="diascan-shot-"))
    write_synthetic_folder(tmp / "alerts", 40)
    win = QtMainWindow()
    win.show_errors_as_dialogs = False
    win.resize(width, height)
    win.set_models(*model_choices())
    link = QtSessionLink(win, session_path=tmp / "session.json", interactive=False)
    win.show()
    done = []
    win.rescore_done.connect(done.append)
    win.data_loaded.connect(win.rescore_all)
    link.start_new(alerts_loader([tmp / "alerts"]))
    while not done or win.jobs.busy("fields"):
        app.processEvents()
    ctl = link.ctl
    ctl.label_source(1, "real")
    ctl.label_source(2, "bogus")
    win.select_source(3)
    for _ in range(20):
        app.processEvents()
    out = ROOT / "docs" / "screenshots" / f"alerts-gallery-{width}x{height}.png"
    win.grab().save(str(out), "PNG")
    win.close()
    return out


if __name__ == "__main__":
    print(main(int(sys.argv[1]), int(sys.argv[2])))
