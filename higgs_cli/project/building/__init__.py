"""Building the outputs: the render, generation with guards, mastering, assembly, delivery
profiles and the review page.

Imports the rooms below it (layout, reading, folder, planning), never `project.commands`.
"""
