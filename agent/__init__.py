"""motoken agent package."""
