"""The iam-sudo Pulumi program: `pulumi up` once per account. Configuration: Pulumi.yaml."""

import pulumi

from iam_sudo_deploy.component import IamSudoDeployment, IamSudoDeploymentArgs

deployment = IamSudoDeployment(
    "iam-sudo", IamSudoDeploymentArgs.from_config(pulumi.Config("iam-sudo"))
)

pulumi.export("functionName", deployment.function_name)
pulumi.export("functionArn", deployment.function_arn)
pulumi.export("baseRoleArn", deployment.base_role_arn)
pulumi.export("invokerPolicyArn", deployment.invoker_policy_arn)
