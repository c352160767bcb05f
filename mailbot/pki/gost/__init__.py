"""GOST R 34.10 (signatures) and GOST R 34.11 (hashes): curves, math, hashing backends."""
