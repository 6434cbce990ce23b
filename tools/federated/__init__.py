"""Federated learning: the Flower template and its manifest, data and models, the validator, the
sandboxed runner (Simulation Engine) and the Deployment Engine launcher, trials, trained-model
registration and serving, and the benchmark against a grid-searched baseline."""
