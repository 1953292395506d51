"""Deploying iam-sudo: the Lambda handler, its archive, and the Pulumi component.

Installed as ``iam_sudo_deploy`` (``pip install 'iam-sudo[deploy]'``), so that other Pulumi
programs can reuse :class:`iam_sudo_deploy.component.IamSudoDeployment`.
"""
