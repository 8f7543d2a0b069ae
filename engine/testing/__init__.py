"""Fault-injection tools for tests of the engine and its connectors (never used in production).

`faultproxy.FaultProxy`: a TCP proxy on 127.0.0.1 that resets, delays, throttles, blackholes or
refuses connections to a real server, changeable while traffic flows.
"""
