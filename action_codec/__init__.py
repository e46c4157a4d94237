"""motoken action_codec package."""
