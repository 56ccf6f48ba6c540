"""tillgate sync: the till's side of head-office sync (outbox, change feed, enrolment)."""
