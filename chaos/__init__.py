"""The chaos run (`make chaos`, `python -m chaos`): the whole stack under vendor faults, killed workers, a
restarted Temporal server and a vendor outage, over both ERPs, ending with source held against target.

Development tooling like bench/ and devstack/: it imports the product, the product never imports it.
"""
