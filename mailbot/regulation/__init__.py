"""The regulation's checks, one small pure function each, and the handlers that chain them."""
