"""motoken policies package."""
