"""The edge's link to the central cloud (MariaDB/MySQL): config, connections, sync up, export."""
