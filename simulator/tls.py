"""A local certificate authority and a server certificate for ``forcebot simulator --tls``.

``ensure_certificates(directory)`` writes (once) and returns:
- ``ca.pem``: a self-signed CA certificate; point clients at it (``verify=``,
  ``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE``) to trust the simulator;
- ``server.pem`` / ``server-key.pem``: a certificate for 127.0.0.1, ::1 and localhost signed by
  that CA (key file 0600);
- ``ca-bundle.pem``: the roots this machine already trusts (REQUESTS_CA_BUNDLE or SSL_CERT_FILE
  when set, else certifi's) plus the CA, for a process that must trust both the simulator and
  real hosts.
Existing files are reused while the server certificate is valid for at least a day more, so a
client that trusted the CA once keeps trusting restarted simulators.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOSTS_DNS = ["localhost"]
HOSTS_IP = ["127.0.0.1", "::1"]
VALID_DAYS = 365


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path
    bundle: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Forcebot Salesforce simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _still_valid(files: TlsFiles) -> bool:
    if not all(p.exists() for p in (files.ca, files.cert, files.key, files.bundle)):
        return False
    try:
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    except ValueError:
        return False
    return cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=1)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _system_roots(directory: Path) -> bytes:
    """The roots this machine's clients trust: REQUESTS_CA_BUNDLE / SSL_CERT_FILE when set
    (and not one of our own bundles), else certifi's."""
    for var in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(var)
        if value and Path(value).is_file() and Path(value).parent != directory:
            return Path(value).read_bytes()
    try:
        import certifi

        return Path(certifi.where()).read_bytes()
    except ImportError:  # pragma: no cover - certifi comes with requests
        paths = ssl.get_default_verify_paths()
        cafile = paths.cafile or paths.openssl_cafile
        return Path(cafile).read_bytes() if cafile and Path(cafile).exists() else b""


def ensure_certificates(directory: Path) -> TlsFiles:
    """Return the CA and server certificate in ``directory``, generating them when needed."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        ca=directory / "ca.pem",
        cert=directory / "server.pem",
        key=directory / "server-key.pem",
        bundle=directory / "ca-bundle.pem",
    )
    if _still_valid(files):
        return files
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Forcebot simulator local CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS * 2))
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
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in HOSTS_DNS]
    names += [x509.IPAddress(ipaddress.ip_address(h)) for h in HOSTS_IP]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    _write(files.ca, ca_pem)
    _write(
        files.key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        private=True,
    )
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM))
    _write(files.bundle, _system_roots(directory).rstrip(b"\n") + b"\n" + ca_pem)
    return files
