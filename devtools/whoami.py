"""``python -m devtools.whoami [--profile P]``: who AWS says the credentials are.

Prints what ``aws sts get-caller-identity --query Arn`` prints, through boto3, so that
the demo needs no AWS CLI: boto3 resolves profiles and ``credential_process`` as every
AWS SDK does.
"""

from __future__ import annotations

import argparse
import json

import boto3


def main() -> None:
    parser = argparse.ArgumentParser(prog="whoami")
    parser.add_argument("--profile")
    args = parser.parse_args()
    sts = boto3.Session(profile_name=args.profile).client("sts")
    print(json.dumps(sts.get_caller_identity()["Arn"]))


if __name__ == "__main__":
    main()
