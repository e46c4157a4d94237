"""Training the token policy: demonstrations as batches, losses, the optimisation loop."""
