"""Serial line connector: config model, line codec and the pyserial reader."""
