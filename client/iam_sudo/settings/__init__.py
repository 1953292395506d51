"""The user's AWS settings and files: config, shared credentials, the credential cache.

File I/O of the user's home; imports only the core.
"""
