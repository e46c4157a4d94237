"""Experimental: the image tokenizer, the video-prediction head and lookahead."""
