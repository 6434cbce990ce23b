"""Federated learning: Flower templates, data, models, sandboxed runner, tuner loop."""
