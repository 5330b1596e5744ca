"""OPC UA client connector: config model, value conversion and the asyncua connector."""
