"""Ways to reach a gateway: MQTT update requests, SSH (fabric) and balena (balena-sdk)."""
