"""The pure core: rules with no I/O, no asyncio and no AWS SDK."""
