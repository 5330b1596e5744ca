"""One exception tree: every exception the product defines is a FactoryError, and a command
turns an uncaught one into its message and exit code."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from factory_common.cli import FactoryTyper
from factory_common.config import ConfigError
from factory_common.errors import EdgeError, FactoryError, FleetError, GatewayError, SimError

PACKAGES = {
    "factory_common": FactoryError,
    "gateway_image": GatewayError,
    "hardware": GatewayError,
    "edge_node": EdgeError,
    "fleet": FleetError,
    "provisioning": FleetError,
    "line_sim": SimError,
}
SHARED = {"factory_common.config.ConfigError", "factory_common.wire.WireError"}


def defined_exceptions() -> list[tuple[str, type[BaseException]]]:
    found = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        modules = [name] + [
            info.name
            for info in pkgutil.walk_packages(package.__path__, name + ".")
            if not info.name.endswith("__main__")
        ]
        for module_name in modules:
            module = importlib.import_module(module_name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseException) and cls.__module__ == module_name:
                    found.append((f"{module_name}.{cls.__qualname__}", cls))
    return found


def test_every_product_exception_sits_under_its_tier_base() -> None:
    found = defined_exceptions()
    assert len(found) >= 30  # the walk really reached the tiers
    wrong = []
    for name, cls in found:
        base = FactoryError if name in SHARED else PACKAGES[name.split(".")[0]]
        if not issubclass(cls, base):
            bases = ", ".join(b.__name__ for b in cls.__bases__)
            wrong.append(f"{name} ({bases}): derive it from {base.__name__}")
    assert wrong == [], "the tree is in factory_common/errors.py:\n" + "\n".join(wrong)


def raising(error: Exception) -> FactoryTyper:
    app = FactoryTyper(add_completion=False)

    @app.command()
    def go() -> None:
        raise error

    @app.command()
    def other() -> None:  # two commands, so `go` is a sub-command as in the real CLIs
        pass

    return app


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("line.yaml", ["line.yaml:3: connectors[0].port: too big"]), 2),
        (GatewayError("no connector named [pump]: check --only"), 1),
    ],
)
def test_a_command_turns_an_uncaught_factory_error_into_its_message_and_exit_code(
    error: FactoryError, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        raising(error)(["go"], prog_name="demo")
    assert exited.value.code == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert str(error).splitlines()[-1].strip() in err  # brackets survive: no rich markup


def test_other_exceptions_still_surface_as_bugs() -> None:
    with pytest.raises(KeyError):
        raising(KeyError("bug"))(["go"], prog_name="demo")
