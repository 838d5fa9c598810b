"""The only code that speaks to Firebase (``admin`` is the runner's firebase-admin side).

``target`` says which project (or emulator) to use, ``identity`` signs the user
in and keeps a token fresh (saved per profile by ``credentials``), ``client``
is the REST database client, ``listener`` follows a path live through the
stream reader in ``sse`` and keeps a mirror built with ``tree``. ``transport``
holds the HTTP timeouts, retries and error mapping they share; ``errors`` the
exceptions, each with one line for the user.

Import from the submodules; this package imports nothing heavy on its own.
"""
