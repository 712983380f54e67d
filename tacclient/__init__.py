"""The Python side of TAC's end-to-end crypto and, later, its HTTP client and `tac` command.

`tacclient.crypto` is the byte-for-byte twin of `frontend/static/tac/crypto.js`; the shared vectors in
tests/vectors/ prove it. The server imports it only for public-key work (verifying signatures) and for
the demo seed, which derives keys exactly as a browser would.
"""
