"""The edit tool: sketch- and colour-guided fill of a masked region."""
