"""Federated learning: Flower apps written from templates, and the sandbox they run in."""
