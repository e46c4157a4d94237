"""The token policy: transformer, tokenization of text, state and plan, checkpoints."""
