"""Planning a render: the project's lines as requests (plan), line references, picks and
approvals applied (edits), and the lines as they stand now (current).

Imports `project.layout`, `project.reading` and `project.folder`.
"""
