"""motoken sims package."""
