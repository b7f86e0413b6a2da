"""The in-process pipeline every tool runs through: host layers in, a pasted-back patch out."""
