"""Where tools run: one interface (start, wait, interrupt), local processes and Slurm."""
