"""What travels between the plug-ins and the engine: protocol, requests, client, errors.

Standard library and pyzmq only: the installer copies this package next to each plug-in."""
