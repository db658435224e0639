"""The tenant's workspace over HTTP: upload, list, download and delete the files its agents'
file tools read and write. ``port`` is what the routes are given (no web framework in it, so
the adapter that implements it imports nothing else of the API); ``routes`` the router."""
