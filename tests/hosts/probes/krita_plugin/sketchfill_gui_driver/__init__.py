"""A test-only Krita plug-in, enabled beside the real SketchFill plug-in in the full GUI
(under Xvfb): once Krita has a window it calls krita_plugin_probe.<SKETCHFILL_GUI_SCENARIO>,
writes SKETCHFILL_WORKDIR/verdict.json like sketchfill_kritarunner does, and ends Krita
(os._exit: nothing may ask to save)."""

import json
import os
import sys
import traceback

from krita import Extension, Krita
from PyQt5.QtCore import QTimer


class Driver(Extension):
    def setup(self):
        self.timer = QTimer()
        self.timer.setInterval(200)
        self.timer.timeout.connect(self.start_when_ready)
        self.timer.start()

    def createActions(self, window):
        pass

    def start_when_ready(self):
        window = Krita.instance().activeWindow()
        if window is None or not window.qwindow().isVisible():
            return
        self.timer.stop()
        QTimer.singleShot(500, self.run)  # let the window finish laying its dockers out

    def run(self):
        verdict = {"ok": False, "python_version": sys.version.split()[0]}
        try:
            import krita_plugin_probe

            verdict["krita_version"] = Krita.instance().version()
            scenario = getattr(krita_plugin_probe, os.environ["SKETCHFILL_GUI_SCENARIO"])
            verdict["value"] = scenario([])
            verdict["ok"] = True
        except BaseException:
            verdict["error"] = traceback.format_exc()
        path = os.path.join(os.environ["SKETCHFILL_WORKDIR"], "verdict.json")
        with open(path + ".tmp", "w") as fh:
            json.dump(verdict, fh, default=repr)
        os.replace(path + ".tmp", path)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


Krita.instance().addExtension(Driver(Krita.instance()))
