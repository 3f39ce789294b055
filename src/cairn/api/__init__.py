"""HTTP: the workloadmgr v1 API (routes, request models, views, faults)."""
