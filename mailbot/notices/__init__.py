"""Every text mailbot writes to a person: replies, follow-ups, reminders, notices, admin alerts."""
