"""The product's one exception tree, and the exit code each branch gives a command.

Every exception the product defines derives from `FactoryError`, under its tier's base, and
keeps the builtin it always was (so `except ValueError` around a parser still works)::

    FactoryError                        exit 1 unless a branch says otherwise
    ├── ConfigError (ValueError)        exit 2: a config file is invalid; lists file:line: key: why
    ├── WireError (ValueError)          a payload or topic breaks the wire contract
    ├── GatewayError                    the gateway firmware
    │   ├── GatewaySetupError           the gateway cannot start as asked (--only)
    │   ├── BufferClosed                the durable buffer was used after close()
    │   ├── ConnectorError              a device connector cannot connect, read or write
    │   ├── UnitTimeout, ModbusExceptionResponse   one Modbus request failed
    │   ├── CodecError                  a Modbus value does not fit its tag's type
    │   ├── LineError, ChecksumMismatch a serial instrument's line cannot be parsed
    │   └── PathSyntaxError, PathMissing, BadTimestamp   MQTT-in payload mapping
    ├── EdgeError                       the edge node
    │   ├── StoreError                  the time-series store
    │   │   └── MasterDataError         the master-data copy
    │   ├── CloudError, OutboxError     the central database link and its outbox
    │   ├── AlarmError, ShelfError      alarms and their shelving
    │   ├── ExprError                   a rule's expression
    │   ├── UserError                   user accounts
    │   └── ExportError                 `edge-node export`
    ├── FleetError                      fleet tooling and provisioning
    │   └── SourceError, VerifyError, FatError, FlashError, ...   images and SD cards
    └── SimError                        the simulated line
        └── StartupError, BrokerUnavailable, CredentialsError

tests/unit/test_errors.py fails when an exception class anywhere in the product is left out.
The commands turn an uncaught FactoryError into its message on stderr and `exit_code`
(factory_common/cli.py); click's own usage errors also exit 2.
"""

from __future__ import annotations

from typing import ClassVar


class FactoryError(Exception):
    """Base of every exception the product raises on purpose."""

    exit_code: ClassVar[int] = 1


class GatewayError(FactoryError):
    """Raised by the gateway firmware (gateway_image)."""


class EdgeError(FactoryError):
    """Raised by the edge node (edge_node)."""


class FleetError(FactoryError):
    """Raised by fleet tooling and provisioning (fleet, provisioning)."""


class SimError(FactoryError):
    """Raised by the simulated line (line_sim)."""
