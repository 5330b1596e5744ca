"""HAT profiles as YAML data: the GPIOs, buses and ports each add-on board takes."""
