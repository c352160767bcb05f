"""The regulation's checks, one small pure function each, and the handlers that chain them.

Step numbers ("step 4", "steps 5-9") are those of ``docs/regulation.md``, which
quotes the fund's regulation sentence by sentence.
"""
