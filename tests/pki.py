"""Certificates made by the tests (trustme, and `cryptography` where trustme has no knob):
a private CA, an unknown one, server certificates valid, expired and for the wrong name, an
intermediate that expires before its leaf, and client certificates, written as PEM files."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
KEY_PASSWORD = "hunter2-THIS-MUST-NEVER-BE-PRINTED"


@dataclass(frozen=True)
class PKI:
    folder: Path
    ca: Path  # the private CA the monitor trusts (tls.ca_file)
    valid: Path  # server chain (key + leaf + intermediate) for the loopback names
    valid_expiry: float  # the earliest notAfter of that chain: its intermediate's
    leaf_expiry: float
    expired: Path
    expired_on: float
    wrong_host: Path  # valid, but for other.example only
    unknown_ca: Path  # for the loopback names, issued by a CA nobody trusts
    internal_name: Path  # for inference.internal only (a server_name override)
    client: Path  # client certificate and key, issued by the private CA
    client_encrypted_key: Path  # the same key, encrypted with KEY_PASSWORD
    client_cert_only: Path
    stranger: Path  # a client certificate from the unknown CA


def _stamp(moment: dt.datetime) -> float:
    return moment.timestamp()


def short_lived_intermediate(root: trustme.CA, not_after: dt.datetime) -> trustme.CA:
    """An intermediate CA under `root` expiring at `not_after` (trustme's child CAs cannot)."""
    root_cert = x509.load_pem_x509_certificate(root.cert_pem.bytes())
    root_key = serialization.load_pem_private_key(root.private_key_pem.bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "depin tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "depin test intermediate")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(root_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1)).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            root_cert.public_key()), critical=False)  # type: ignore[arg-type]
        .sign(root_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    intermediate = trustme.CA.from_pem(cert.public_bytes(serialization.Encoding.PEM), key_pem)
    intermediate.parent_cert = root  # so that issued chains carry the intermediate
    return intermediate


def make_pki(folder: Path) -> PKI:
    folder.mkdir(parents=True, exist_ok=True)
    root, stranger_ca = trustme.CA(), trustme.CA()
    inter_expiry = NOW + dt.timedelta(days=20)
    leaf_expiry = NOW + dt.timedelta(days=300)
    intermediate = short_lived_intermediate(root, inter_expiry)

    def write(name: str, data: bytes) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    def chain(name: str, leaf: trustme.LeafCert) -> Path:
        return write(name, leaf.private_key_and_cert_chain_pem.bytes())

    expired_on = NOW - dt.timedelta(days=3)
    client = root.issue_cert("monitor@depin.test")
    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(KEY_PASSWORD.encode()))
    return PKI(
        folder=folder,
        ca=write("ca.pem", root.cert_pem.bytes()),
        valid=chain("valid.pem", intermediate.issue_cert(*LOOPBACK_NAMES, not_after=leaf_expiry)),
        valid_expiry=_stamp(inter_expiry),
        leaf_expiry=_stamp(leaf_expiry),
        expired=chain("expired.pem", root.issue_cert(
            *LOOPBACK_NAMES, not_before=NOW - dt.timedelta(days=90), not_after=expired_on)),
        expired_on=_stamp(expired_on),
        wrong_host=chain("wrong-host.pem", root.issue_cert("other.example")),
        unknown_ca=chain("unknown-ca.pem", stranger_ca.issue_cert(*LOOPBACK_NAMES)),
        internal_name=chain("internal.pem", root.issue_cert("inference.internal")),
        client=chain("client.pem", client),
        client_encrypted_key=write("client-key-encrypted.pem", encrypted),
        client_cert_only=write("client-cert.pem", client.cert_chain_pems[0].bytes()),
        stranger=chain("stranger.pem", stranger_ca.issue_cert("intruder@depin.test")),
    )
