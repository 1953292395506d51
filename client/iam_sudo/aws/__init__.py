"""The AWS edge: transports, the mapping of AWS errors beside them, IAM reads, STS, the
policy store and the console federation endpoint. Imports the core and the settings.
"""
