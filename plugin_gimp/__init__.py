"""GIMP 3 plug-in sources, shipped as data of the sketchfill package
(see engine/install/plugins.py)."""
