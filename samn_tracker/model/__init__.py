"""The SAMN network: encoders, appearance memory, spatial memory (DCF) and decoder."""
