"""Federated learning with Flower: the apps we run, on the Simulation or the Deployment Engine."""
