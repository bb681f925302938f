"""Certificates for the TLS tests, made at test time: a server CA and certificate for 127.0.0.1,
a client CA and certificate for mutual TLS, and a CA that signed neither (the wrong CA file)."""

from __future__ import annotations

from pathlib import Path

import trustme


def write_tls_files(directory: Path, prefix: str, client_identity: str) -> dict[str, Path]:
    """PEM files named `<prefix>-<name>.pem`; keys: ca, server-cert, server-key, client-ca,
    client-cert, client-key, wrong-ca."""
    server_ca, client_ca, stranger_ca = trustme.CA(), trustme.CA(), trustme.CA()
    server_cert = server_ca.issue_cert("localhost", "127.0.0.1")
    client_cert = client_ca.issue_cert(client_identity)
    blobs = {
        "ca": server_ca.cert_pem,
        "server-cert": server_cert.cert_chain_pems[0],
        "server-key": server_cert.private_key_pem,
        "client-ca": client_ca.cert_pem,
        "client-cert": client_cert.cert_chain_pems[0],
        "client-key": client_cert.private_key_pem,
        "wrong-ca": stranger_ca.cert_pem,
    }
    paths = {}
    for name, blob in blobs.items():
        paths[name] = directory / f"{prefix}-{name}.pem"
        blob.write_to_path(str(paths[name]))
    return paths
