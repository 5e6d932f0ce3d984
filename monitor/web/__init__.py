"""The monitor's HTTP side: /metrics, /healthz, /readyz and the status page."""
