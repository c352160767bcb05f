"""The long-running process: intake loop, outbox, scheduler, signals."""
