"""headrace's data plane: bytes and rows in and out of S3, PostgreSQL, MySQL, DynamoDB and files.

Connectors never import the engine.
"""
