"""Speed switches a config can list (channels-last, compile)."""
