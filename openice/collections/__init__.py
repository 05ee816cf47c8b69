"""Collections: the post-facilitation stage that works overdue loans until they are cured, repaid or recovered.

`strategy` holds the pure rules (treatments by stage, contact records, promises, sharing cases among agents),
`daily` the end-of-day step that keeps cases in step with the loans, `repository` the SQL, and `service` the
operations the API and the CLI call.
"""
