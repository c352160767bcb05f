"""Certificates, signatures (GOST R 34.10, RSA, ECDSA), CRLs and the revocation index."""
