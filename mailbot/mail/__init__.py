"""Mail in and out: IMAP intake, letter parsing, attachments, replies, SMTP outbox."""
