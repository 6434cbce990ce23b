"""edgeai: an autonomous edge-AI system (plan, select, offload, run, fuse), offline by default."""

__version__ = "0.1.0"
