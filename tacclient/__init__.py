"""The Python client and the `tac` command: everything a browser does, for scripts and other systems,
on the protocol package (tacprotocol: crypto, manifests, posts, the record's rules). The server never
imports this package (tests/test_protocol_package.py)."""
