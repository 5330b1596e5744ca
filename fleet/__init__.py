"""The `fleet` tool: inventory, identities, releases, SD images and staged rollouts."""
