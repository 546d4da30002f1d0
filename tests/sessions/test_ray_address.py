"""`--ray HOST:PORT` is matched whole: no Ray cluster needed to refuse a malformed address."""

from __future__ import annotations

import pytest

from higgs_cli.distributed.cluster import check_address
from higgs_cli.errors import UsageError


@pytest.mark.parametrize("address", ["127.0.0.1:6379\n", "127.0.0.1:6379 ", "host", "host:port", "ray://:1",
                                     "127.0.0.1:6379/x"])
def test_a_malformed_address_is_refused_before_any_connection(address):
    with pytest.raises(UsageError, match="is not a Ray address"):
        check_address(address)
