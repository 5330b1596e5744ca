"""Gateway tier: the firmware that runs on a Raspberry Pi, and what packages it as an image."""
