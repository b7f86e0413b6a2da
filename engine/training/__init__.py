"""Training parts every tool shares: step loop, export staging, data helpers, losses, metrics."""
