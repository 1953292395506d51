"""The IAM permission sets the deployment grants, shared by the hub (component.py) and the
spokes (spoke.py): one copy, so that neither imports the other."""

from __future__ import annotations

# Exactly the IAM actions the iam-sudo core calls (tests compare with what it sends).
IAM_LIST_ACTIONS = ("iam:ListPolicies", "iam:ListRoles")
IAM_ROLE_ACTIONS = (
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListRolePolicies",
)
# Reading managed policies' documents (to check them, and to pack those beyond 10 ARNs).
IAM_POLICY_ACTIONS = ("iam:GetPolicy", "iam:GetPolicyVersion")
# Creating content-addressed policies, only under /iam-sudo/.
IAM_CREATE_ACTIONS = ("iam:CreatePolicy",)
IAM_READ_ACTIONS = IAM_LIST_ACTIONS + IAM_ROLE_ACTIONS + IAM_POLICY_ACTIONS
# What could change the document a live session's packed policy ARN stands for (a new
# default version), or remove it: denied to every base role, whatever it is granted.
PACKED_POLICY_WRITES = (
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:DeletePolicyVersion",
    "iam:DeletePolicy",
    "iam:TagPolicy",
    "iam:UntagPolicy",
)
