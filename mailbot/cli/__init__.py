"""The administrator's command line (``mailbot``)."""
