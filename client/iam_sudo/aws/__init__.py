"""The AWS edge: transports, error mapping, IAM reader, STS, and what keeps credentials fresh."""
