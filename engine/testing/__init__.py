"""Test tools of the engine: scripted activities and virtual time (never used in production).

The network fault proxies and the connector conformance kit live in :mod:`connectors.testing`.
"""
