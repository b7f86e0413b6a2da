"""kritarunner entry point used by hostenv.run_krita (runs inside Krita's own Python).

``kritarunner -s sketchfill_kritarunner -f run VERDICT MODULE FUNC [ARG]...`` imports MODULE,
calls ``FUNC([ARG, ...])`` and writes ``{"ok", "value" | "error", "krita_version",
"python_version"}`` as JSON to VERDICT, because kritarunner itself always exits 0.
"""

import importlib
import json
import os
import sys
import traceback


def run(argv):
    argv = [str(a) for a in argv]
    verdict_path, module, func, args = argv[0], argv[1], argv[2], argv[3:]
    verdict = {"ok": False, "python_version": sys.version.split()[0]}
    try:
        from krita import Krita

        verdict["krita_version"] = Krita.instance().version()
        mod = importlib.import_module(module)
        verdict["value"] = getattr(mod, func)(args)
        verdict["ok"] = True
    except BaseException:
        verdict["error"] = traceback.format_exc()
    tmp = verdict_path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(verdict, fh, default=repr)
    os.replace(tmp, verdict_path)
    sys.stdout.flush()
    sys.stderr.flush()
