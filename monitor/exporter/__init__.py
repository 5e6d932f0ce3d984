"""Prometheus: the metrics sink of probe results, the scrape-time month SLA figures (read
through monitor.analysis), and the recording and alert rules generated from SLA profiles."""
