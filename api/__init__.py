"""The REST API's shared plumbing: error shape, authentication, pagination, throttling, the
scoped viewset base, the OpenAPI schema class and the ``/api/`` URLs. Each app's own endpoints
live in its ``<app>/api/`` package and build on these."""
