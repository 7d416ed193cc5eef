#!/usr/bin/env python3
"""Issue the TLS certificates of a regency's NATS server, and of the leaf link to the national hub.

Needs only the ``cryptography`` package (a dependency of Pulih's kit). Three commands:

    # once per regency, on a machine the CA key never leaves (it signs every certificate below)
    python deploy/tls/issue_certificates.py ca --dir ca-3301 --name "Pulih BNNK Cilacap (3301)"

    # the NATS server's certificate: every name clinics and services dial
    python deploy/tls/issue_certificates.py server --ca ca-3301 --dir tls-3301 \
        --host nats.bnnk-cilacap.example --host localhost --host 127.0.0.1

    # a client certificate: the regency's side of the leaf link (issued by the national CA), or a
    # clinic's, when the server is set to verify clients
    python deploy/tls/issue_certificates.py client --ca national-ca --dir leaf-3301 --name leaf-r3301

``ca`` writes ``ca.pem`` and ``ca-key.pem``; ``server`` writes ``server.pem``, ``server-key.pem``
and a copy of ``ca.pem``; ``client`` writes ``client.pem``, ``client-key.pem`` and ``ca.pem``.
Private keys are written readable by their owner only. Keys are ECDSA P-256; certificates are
valid for 825 days (the CA for ten years): issue new ones before they expire and reload the
server (``nats-server --signal reload``). deploy/README.md says where each file goes.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 825


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _write_certificate(path: Path, certificate: x509.Certificate) -> None:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pulih"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity(builder: x509.CertificateBuilder, days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    # An hour of slack: a clock slightly behind must not find a fresh certificate "not yet valid".
    return builder.not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(
        now + datetime.timedelta(days=days)
    )


def issue_ca(directory: Path, name: str, *, days: int = CA_DAYS, force: bool = False) -> Path:
    """Make a certificate authority in ``directory`` (``ca.pem``, ``ca-key.pem``); return ca.pem.

    Refuses to replace an existing CA unless ``force``: every certificate it signed would stop
    being trusted.
    """
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "ca.pem", directory / "ca-key.pem"
    if key_path.exists() and not force:
        raise FileExistsError(f"{key_path} exists: a new CA invalidates every certificate it signed")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(name)
    certificate = (
        _validity(x509.CertificateBuilder(), days)
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    _write_certificate(cert_path, certificate)
    return cert_path


def _load_ca(ca_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    certificate = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((ca_dir / "ca-key.pem").read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{ca_dir / 'ca-key.pem'} is not an EC key made by this script")
    return certificate, key


def _issue(
    directory: Path,
    ca_dir: Path,
    stem: str,
    common_name: str,
    usage: x509.ObjectIdentifier,
    alternative_names: Sequence[x509.GeneralName],
    days: int,
) -> Path:
    ca_certificate, ca_key = _load_ca(ca_dir)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _validity(x509.CertificateBuilder(), days)
        .subject_name(_name(common_name))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if alternative_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
    certificate = builder.sign(ca_key, hashes.SHA256())
    _write_key(directory / f"{stem}-key.pem", key)
    _write_certificate(directory / f"{stem}.pem", certificate)
    _write_certificate(directory / "ca.pem", ca_certificate)
    return directory / f"{stem}.pem"


def _host(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def issue_server(directory: Path, ca_dir: Path, hosts: Sequence[str], *, days: int = LEAF_DAYS) -> Path:
    """A server certificate for every name and address in ``hosts``, signed by the CA in
    ``ca_dir``: ``server.pem``, ``server-key.pem`` and the CA's ``ca.pem`` in ``directory``."""
    if not hosts:
        raise ValueError("name at least one host: the names clinics and services dial")
    return _issue(
        directory,
        ca_dir,
        "server",
        hosts[0],
        ExtendedKeyUsageOID.SERVER_AUTH,
        [_host(h) for h in hosts],
        days,
    )


def issue_client(directory: Path, ca_dir: Path, name: str, *, days: int = LEAF_DAYS) -> Path:
    """A client certificate named ``name`` (e.g. ``leaf-r3301``, ``clinic-<id>``), signed by the CA
    in ``ca_dir``: ``client.pem``, ``client-key.pem`` and the CA's ``ca.pem`` in ``directory``."""
    return _issue(directory, ca_dir, "client", name, ExtendedKeyUsageOID.CLIENT_AUTH, [], days)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    ca = commands.add_parser("ca", help="make a certificate authority (ca.pem, ca-key.pem)")
    ca.add_argument("--dir", required=True, type=Path, help="where to write it")
    ca.add_argument("--name", required=True, help='its name, e.g. "Pulih BNNK Cilacap (3301)"')
    ca.add_argument("--days", type=int, default=CA_DAYS)
    ca.add_argument("--force", action="store_true", help="replace an existing CA (re-issue everything)")
    server = commands.add_parser("server", help="a NATS server certificate (server.pem, server-key.pem)")
    server.add_argument("--ca", required=True, type=Path, help="the CA's directory")
    server.add_argument("--dir", required=True, type=Path, help="where to write it")
    server.add_argument("--host", action="append", default=[], help="a DNS name or IP clients dial (repeat)")
    server.add_argument("--days", type=int, default=LEAF_DAYS)
    client = commands.add_parser("client", help="a client certificate (client.pem, client-key.pem)")
    client.add_argument("--ca", required=True, type=Path, help="the CA's directory")
    client.add_argument("--dir", required=True, type=Path, help="where to write it")
    client.add_argument("--name", required=True, help="who it is, e.g. leaf-r3301 or clinic-<clinic id>")
    client.add_argument("--days", type=int, default=LEAF_DAYS)
    args = parser.parse_args(argv)
    try:
        if args.command == "ca":
            written = issue_ca(args.dir, args.name, days=args.days, force=args.force)
        elif args.command == "server":
            written = issue_server(args.dir, args.ca, args.host, days=args.days)
        else:
            written = issue_client(args.dir, args.ca, args.name, days=args.days)
    except (OSError, ValueError) as exc:
        print(f"issue_certificates: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {written} (and its key) in {written.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
