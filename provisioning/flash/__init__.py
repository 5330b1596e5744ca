"""Writing images to SD cards and USB readers safely: which device, then write and verify."""
