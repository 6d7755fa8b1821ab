"""Test tools: real child programs with named behaviours, and the module that installs them."""
