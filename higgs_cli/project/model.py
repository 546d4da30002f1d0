"""Transitional re-export: the project's data model moved to `higgs_cli.plugins.script`,
below the project layer, so that plugins never import `higgs_cli.project`.

Import from `higgs_cli.plugins` (or `higgs_cli.plugins.script`) in new code.
"""

from higgs_cli.plugins.script import Line, Location, OutputSettings, Project, SamplingDefaults, Section, Speaker

__all__ = ["Line", "Location", "OutputSettings", "Project", "SamplingDefaults", "Section", "Speaker"]
