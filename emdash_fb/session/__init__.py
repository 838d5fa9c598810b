"""The domain: shared sessions on RTDB — paths, records, operations and the live view.

Used by the CLI, the runner and the tests; speaks to Firebase only through
``emdash_fb.firebase``.
"""
