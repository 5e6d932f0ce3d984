"""depin-monitor: measures the reliability of decentralized GPU inference networks."""

__version__ = "0.1.0"
