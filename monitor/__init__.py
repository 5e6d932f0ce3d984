"""depin-monitor: measures the reliability of decentralized GPU inference networks.

Layers, each importing only those below it (docs/architecture.md): cli -> runtime -> web ->
exporter -> analysis -> storage -> config, simulator -> probes (a package of its own) -> core.
"""

__version__ = "0.1.0"
