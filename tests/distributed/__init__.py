"""Distributed deployment suite: PostgreSQL, Celery workers on Redis, two triggerers."""
