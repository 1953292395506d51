"""The command line: parsing, routing, delivery of credentials. Never shipped in the
function's archive; nothing in the library imports it.
"""
