"""GPIO connector: config model and the gpiozero inputs and outputs."""
