"""Projects: the YAML format, validation, planning into engine requests, rendering."""
