"""What the agent keeps on disk about its runs: the journal of owed registry updates."""
