"""Shared REST API plumbing: error shapes, throttles, pagination, fields, permissions, base
views, the schema's auth scheme and the one /api/v1/ route list (urls.py). Imports no app."""
