"""Board profiles as YAML data files, loaded by hardware.profiles.load_board."""
