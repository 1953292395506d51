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
# What every base role is denied on packed policies (PACKED_POLICY_WRITES) is a fact of
# iam-sudo's core, which checks it at use: iam_sudo.core.duties.
