"""Split inference: photo-world models cut between device and edge, a learned feature codec, a socket runtime."""
