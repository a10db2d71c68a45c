"""Maximum-likelihood training of global models."""
