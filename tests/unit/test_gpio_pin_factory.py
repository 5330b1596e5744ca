"""A missing GPIO pin factory says how to get one inside the gateway's venv or container."""

from __future__ import annotations

import platform

import pytest

from gateway_image.firmware.connectors.base import ConnectorError
from gateway_image.firmware.connectors.gpio.connector import make_pin_factory


@pytest.mark.skipif(
    platform.machine() == "aarch64" and platform.system() == "Linux",
    reason="on linux aarch64 the gateway extra installs lgpio, and a Pi may have GPIO chips",
)
def test_an_unavailable_lgpio_factory_names_the_gateway_extra_not_debian() -> None:
    # Elsewhere lgpio is not installed (uv.lock's marker), so the factory cannot load.
    with pytest.raises(ConnectorError) as caught:
        make_pin_factory("lgpio")
    message = str(caught.value)
    assert "python3-lgpio" not in message  # a venv or container cannot see Debian's module
    assert "factory-edge[gateway]" in message
    assert "pin_factory: mock" in message
