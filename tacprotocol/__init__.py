"""TAC's end-to-end protocol: the formats and rules that the browser, the Python client and the server
must agree on, and nothing that talks to a network (tacprotocol/README.md).

The server imports this package and never tacclient (tests/test_protocol_package.py checks both)."""
