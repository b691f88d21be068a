"""What the data bucket holds and how its files are shaped: one definition for the stacks
(IAM prefixes, lifecycle rules, the Glue catalog) and for the handlers that write them.

Pure Python, no AWS and no pyarrow import, so every layer can use it.
"""
