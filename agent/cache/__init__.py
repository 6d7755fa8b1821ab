"""The content-addressed input cache shared by one agent's jobs (store, copies, sharing)."""
