"""MQTT-in connector: config model, JSONPath payload mapping and the paho subscriber."""
