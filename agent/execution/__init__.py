"""Where tools run: one interface (start, wait, interrupt), local processes and (later) Slurm."""
