"""Records of runs done outside Istari, written to a system's external workflow log."""
