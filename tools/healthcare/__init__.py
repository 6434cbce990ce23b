"""The healthcare-home models that really run: simulated sensors, signal models, mood classifiers."""
