"""Reference networks: protocol-faithful inference servers injecting faults from profiles."""
