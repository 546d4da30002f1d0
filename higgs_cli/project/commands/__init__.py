"""One module per `higgs project` command beyond render: new, status, clean, takes, approvals,
check, and import (importers/). The top room: it may import every room below it.
"""
