"""The running monitor: the scheduler, the event-loop watch, and the agent (`monitor()`) that
`run` and `demo` share to wire config, probes, store, metrics and the HTTP server together."""
