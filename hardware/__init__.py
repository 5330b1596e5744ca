"""Hardware knowledge for technicians and config checks: board profiles, wiring checks, sheets."""

from hardware.profiles import BoardProfile, known_boards, load_board

__all__ = ["BoardProfile", "known_boards", "load_board"]
