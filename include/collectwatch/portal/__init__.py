"""The regulator portal: scoped downloads of the publication, submission upload, the
monthly bulletin and the audit log (``collectwatch serve``)."""
