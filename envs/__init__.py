"""motoken envs package."""
