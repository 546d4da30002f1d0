"""The project folder on disk: the line store (render cache), the last render's state, the
build manifest, the lock file, snapshots, output names, and a project or build on a bucket
(shared cache, publish, mirror, place).

Imports `project.layout` and `project.reading`, never planning, building or commands.
"""
