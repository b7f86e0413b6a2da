"""Tests that drive the real GIMP 3 and Krita hosts (see README.md here).

A package so that this folder's conftest.py gets its own module name (hosts.conftest) and
does not shadow tests/conftest.py, which other test modules import as ``conftest``.
"""
