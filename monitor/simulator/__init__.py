"""Reference networks: protocol-faithful inference servers that inject faults from named profiles."""
