"""``headrace serve``: the AWS Data Pipeline API (JSON 1.1 over HTTP, SigV4) over the service
layer (``engine.service``), so boto3, the aws CLI and Terraform work with the endpoint changed.

``app`` (the ASGI app: ``/``, ``/healthz``, access log), ``protocol`` (targets, bodies, AWS
error shapes), ``shapes`` (the operations' input shapes and their check), ``sigv4`` (signature
verification, credentials), ``operations`` (one handler per operation), ``wire`` (objects and
definitions in the API's shapes), ``serve`` (Hypercorn and the engine in one process).
"""
