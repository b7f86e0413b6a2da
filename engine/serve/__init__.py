"""The engine processes: the server that runs the tools and the broker in front of several."""
