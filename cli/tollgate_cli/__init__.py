"""The `tollgate` command: config checks, keys, reports, workloads and local mode."""
