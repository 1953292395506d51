"""The orchestrator's steps and the function's protocol: finding a role, planning a
simulation, other accounts of an Organization, the remote request. Built on the AWS edge.
"""
