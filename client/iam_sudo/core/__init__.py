"""The pure core: rules with no I/O, no asyncio and no AWS SDK.

Where "never wider" lives: what a simulation may send, how policies are fitted and judged.
Modules here import only each other (tests/unit/test_layers.py).
"""
