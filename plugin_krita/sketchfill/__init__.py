"""SketchFill for Krita: a docker panel and actions for sketch- and colour-guided edits.

Krita imports this package at start-up (sketchfill.desktop); importing it registers the
extension (the actions) and the docker panel.
"""

from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita

from .ids import DOCKER_ID


def _register() -> None:
    app = Krita.instance()
    try:
        from .sketchfill_client import client  # noqa: F401 - fails without pyzmq
    except ImportError as exc:
        from .missing import MissingExtension, missing_docker

        extension, docker = MissingExtension(app, str(exc)), missing_docker(str(exc))
    else:
        from .docker import SketchFillDocker
        from .extension import SketchFillExtension

        extension, docker = SketchFillExtension(app), SketchFillDocker
    app.addExtension(extension)
    app.addDockWidgetFactory(DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, docker))


_register()
