"""Master data at the edge (equipment, tags and units, recipes, control limits, products),
kept in its own SQLite file apart from the time series and synced down from the cloud.

Public API: `MasterData` (reads from any thread; `add_listener` for changes), the row types,
and `SyncDown` (edge_node.masterdata.sync) for the periodic pull from MariaDB/MySQL.
"""

from edge_node.masterdata.model import (
    ChangeSet,
    ControlLimits,
    Equipment,
    Product,
    Pull,
    Recipe,
    RecipeParameter,
    SyncStatus,
    TagInfo,
)
from edge_node.masterdata.store import MasterData, MasterDataError

__all__ = [
    "ChangeSet",
    "ControlLimits",
    "Equipment",
    "MasterData",
    "MasterDataError",
    "Product",
    "Pull",
    "Recipe",
    "RecipeParameter",
    "SyncStatus",
    "TagInfo",
]
