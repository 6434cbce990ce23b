"""Planning: a request in plain language -> a plan (sub-tasks, models, dependencies)."""
