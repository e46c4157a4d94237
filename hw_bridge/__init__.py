"""motoken hw_bridge package."""
