"""The dashboard pages, one module per page (machines.py also holds the machine actions)."""
