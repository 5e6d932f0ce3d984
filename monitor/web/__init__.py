"""The monitor's HTTP side: /metrics, /healthz, /readyz, the status page and /api/v1/."""
